#!/usr/bin/env bash
# The baseline of the alert_to_pr benchmark: what an on-call engineer's
# script does to open a rollback pull request with the git CLI and curl,
# in a checked-out clone of the GitOps repository:
#   fetch, branch off the remote head, restore the app's inputs from the
#   known-good commit, commit, push the branch (never forced), and ask the
#   forge to open the pull request.
# The bench times it from start until the forge receives the create-PR
# request, for the same apps rewind rolls back, in the same run.
#
# usage: alert_to_pr_cli.sh WORKTREE BRANCH GOOD_COMMIT API_URL OWNER REPO TITLE PATH...
# GITHUB_TOKEN in the environment (never on the command line).
set -euo pipefail

worktree=$1 branch=$2 good=$3 api=$4 owner=$5 repo=$6 title=$7
shift 7
: "${GITHUB_TOKEN:?GITHUB_TOKEN must be set}"

cd "$worktree"
git fetch -q origin main
git checkout -q -B "$branch" origin/main
# Remove first, so files added since the good commit go too (a restore, as
# rewind does), then take the app's inputs as they were.
git rm -r -q --ignore-unmatch -- "$@"
git checkout -q "$good" -- "$@"
git commit -q -m "Revert ${branch#cli/} to ${good:0:12}" -m "Rolled back by the alert_to_pr baseline script."
git push -q origin "HEAD:refs/heads/$branch"

body=$(printf '{"title":"%s","head":"%s","base":"main","body":"Restores %s from %s.","maintainer_can_modify":false}' \
    "$title" "$branch" "$*" "$good")
curl -sS -f -o /dev/null \
    -X POST "$api/repos/$owner/$repo/pulls" \
    -H "Authorization: Bearer $GITHUB_TOKEN" \
    -H "Accept: application/vnd.github+json" \
    -H "User-Agent: alert-to-pr-baseline" \
    -H "Content-Type: application/json" \
    --data "$body"
