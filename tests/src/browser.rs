//! A browser for the web UI tests: its cookies by hand (the session and
//! the CSRF cookie), redirects reported rather than followed, and the
//! page's CSRF token carried into every form.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};

use crate::World;

/// A browser: its cookies, by hand (the session and the CSRF cookie).
#[derive(Debug)]
pub struct Browser {
    /// Redirects are answers to check, not to follow.
    pub client: reqwest::Client,
    pub csrf_cookie: String,
    pub session: Option<String>,
    pub csrf: String,
}

pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

/// The `value` of the first hidden `csrf` input of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

impl Browser {
    pub fn cookies(&self) -> String {
        let mut cookies = format!("rewind_csrf={}", self.csrf_cookie);
        if let Some(session) = &self.session {
            cookies.push_str(&format!("; rewind_session={session}"));
        }
        cookies
    }

    /// Opens the sign-in page, then signs in with `token` (if any).
    pub async fn sign_in(world: &World, token: Option<&str>) -> Browser {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = client
            .get(format!("{}/ui/login", world.url()))
            .send()
            .await
            .unwrap();
        let csrf_cookie = cookie_value(&set_cookie(response.headers(), "rewind_csrf").unwrap());
        let html = response.text().await.unwrap();
        let mut browser = Browser {
            client,
            csrf: csrf_of(&html),
            csrf_cookie,
            session: None,
        };
        assert_eq!(browser.csrf, browser.csrf_cookie);
        if let Some(token) = token {
            let (status, headers, _) = browser.login(world, token, &world.url()).await;
            if let Some(cookie) = set_cookie(&headers, "rewind_session") {
                assert_eq!(status, StatusCode::SEE_OTHER);
                browser.session = Some(cookie_value(&cookie));
                // Signed in, forms carry the session's CSRF token.
                let (_, html) = browser.get(world, "/").await;
                browser.csrf = csrf_of(&html);
            } else {
                assert_eq!(status, StatusCode::UNAUTHORIZED);
            }
        }
        browser
    }

    pub async fn login(
        &self,
        world: &World,
        token: &str,
        origin: &str,
    ) -> (StatusCode, HeaderMap, String) {
        let response = self
            .client
            .post(format!("{}/ui/login", world.url()))
            .header("cookie", self.cookies())
            .header("origin", origin)
            .form(&[("token", token), ("csrf", self.csrf.as_str())])
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap_or_default())
    }

    pub async fn get(&self, world: &World, path: &str) -> (StatusCode, String) {
        let response = self
            .client
            .get(format!("{}{path}", world.url()))
            .header("cookie", self.cookies())
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap_or_default())
    }

    pub async fn post_with(
        &self,
        world: &World,
        path: &str,
        origin: Option<&str>,
        csrf: Option<&str>,
    ) -> (StatusCode, String) {
        let mut request = self
            .client
            .post(format!("{}{path}", world.url()))
            .header("cookie", self.cookies());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let form: Vec<(&str, &str)> = csrf.map(|c| ("csrf", c)).into_iter().collect();
        let response = request.form(&form).send().await.unwrap();
        (response.status(), response.text().await.unwrap_or_default())
    }

    pub async fn post(&self, world: &World, path: &str, origin: &str) -> (StatusCode, String) {
        self.post_with(world, path, Some(origin), Some(&self.csrf))
            .await
    }
}
