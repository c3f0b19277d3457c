//! Authentication plumbing: password hashing (Argon2id, on a bounded blocking pool), secrets and
//! token hashes, the session and device cookies, the sign-in form's token, where a sign-in may
//! come from, and the client's address. The operations that use them are in `ops::own`.

use crate::error::{ApiError, ApiResult};
use crate::extract::SESSION_COOKIE;
use crate::AppState;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum_extra::extract::cookie::{Cookie, SameSite};
use base64::Engine;
use countersign_core::error::ErrorCode;
use countersign_core::Millis;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub const SESSION_TTL: Millis = 12 * 60 * 60 * 1000;
/// Sign-in rate limit: failures counted over this window...
pub const FAILURE_WINDOW: Millis = 15 * 60 * 1000;
/// ...at most this many per username...
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
/// ...and this many per client address...
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;
/// ...and, separately, this many per trusted device (a browser with a device cookie).
pub const MAX_FAILURES_PER_DEVICE: i64 = 5;

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// 32 random bytes, URL-safe base64.
pub fn random_secret() -> String {
    let mut bytes = [0_u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A new API token; `cs_` makes it recognisable to secret scanners.
pub fn new_token() -> String {
    format!("cs_{}", random_secret())
}

pub fn hash_password(password: &str) -> ApiResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::validation(format!("cannot hash this password: {e}")))
}

pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    // An unknown account still pays for one verification, so timing does not reveal it.
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default());
    let hash = hash.unwrap_or(dummy);
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Argon2 off the async workers (issue 15, finding 11): at most `workers` checks run at once,
/// each on tokio's blocking pool, and at most `queue` more wait for a worker. Beyond that a
/// sign-in is answered `server_busy` at once, before anything is counted or checked, instead of
/// queueing without bound while every other request waits behind the hashing.
pub struct PasswordPool {
    workers: Arc<Semaphore>,
    places: Arc<Semaphore>,
}

impl PasswordPool {
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        PasswordPool { workers: Arc::new(Semaphore::new(workers)), places: Arc::new(Semaphore::new(workers + queue)) }
    }

    /// A place in the pool for one check or hash, or `server_busy` when every place is taken.
    pub fn admit(&self) -> ApiResult<Admitted> {
        let place = self.places.clone().try_acquire_owned().map_err(|_| {
            let mut err = ApiError::new(
                ErrorCode::ServerBusy,
                "The server is busy checking other passwords. Try again in a moment.",
            );
            err.retry_after = Some(1);
            err
        })?;
        Ok(Admitted { place, workers: self.workers.clone() })
    }
}

/// A place in the [`PasswordPool`], spent on one check or hash.
pub struct Admitted {
    place: OwnedSemaphorePermit,
    workers: Arc<Semaphore>,
}

impl Admitted {
    /// [`verify_password`] on the blocking pool.
    pub async fn verify(self, password: String, hash: Option<String>) -> ApiResult<bool> {
        self.run(move || verify_password(&password, hash.as_deref())).await
    }

    /// [`hash_password`] on the blocking pool.
    pub async fn hash(self, password: String) -> ApiResult<String> {
        self.run(move || hash_password(&password)).await?
    }

    async fn run<T: Send + 'static>(self, work: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
        let worker =
            self.workers.acquire_owned().await.map_err(|_| ApiError::new(ErrorCode::Unavailable, "shutting down"))?;
        let place = self.place;
        // The permits go with the work: a client that gives up does not free a worker while its
        // hash is still running.
        tokio::task::spawn_blocking(move || {
            let _held = (place, worker);
            work()
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "a password check did not finish");
            ApiError::new(ErrorCode::InternalError, "an internal error occurred; it has been logged")
        })
    }
}

/// The name of the sign-in key among the server's keys (`Store::server_key`).
pub const SIGN_IN_KEY: &str = "sign-in";
/// The device cookie (OWASP's "device cookie" against online guessing): proof that this browser
/// signed in as an account before, which earns it an attempt budget of its own.
pub const DEVICE_COOKIE: &str = "countersign_device";
/// How long a device cookie is honoured.
pub const DEVICE_TTL: Millis = 180 * 24 * 60 * 60 * 1000;
/// The sign-in form's own cookie: a random nonce whose HMAC the form carries (a signed
/// double-submit token, since before sign-in there is no session to tie a token to).
pub const LOGIN_FORM_COOKIE: &str = "countersign_login";

/// Signs device cookies and sign-in form tokens. The key lives in the database, where every
/// replica finds it. That is acceptable because neither grants access: a device cookie only
/// gives its browser an attempt budget of its own, and a form token is one of three login-CSRF
/// checks (with `Origin` and `Sec-Fetch-Site`). Someone who can read the key can already read
/// the password hashes and guess offline, faster than any budget allows online.
pub struct SignInKey(Hmac<Sha256>);

impl SignInKey {
    pub fn new(secret: &str) -> ApiResult<Self> {
        <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
            .map(SignInKey)
            .map_err(|_| ApiError::new(ErrorCode::InternalError, "the sign-in key cannot be used"))
    }

    fn mac(&self, purpose: &str, parts: &[&str]) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(purpose.as_bytes());
        for part in parts {
            mac.update(b"\n");
            mac.update(part.as_bytes());
        }
        mac
    }

    fn tag(&self, purpose: &str, parts: &[&str]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.mac(purpose, parts).finalize().into_bytes())
    }

    fn tag_matches(&self, purpose: &str, parts: &[&str], tag: &str) -> bool {
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag) else { return false };
        self.mac(purpose, parts).verify_slice(&tag).is_ok()
    }

    /// A new device cookie for `username`, issued at `now`: `username.nonce.issued.tag`
    /// (the username base64url-encoded).
    pub fn device_cookie(&self, username: &str, now: Millis) -> String {
        let user = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(username);
        let nonce = random_secret();
        let issued = now.to_string();
        let tag = self.tag("device", &[username, &nonce, &issued]);
        format!("{user}.{nonce}.{issued}.{tag}")
    }

    /// The device (its nonce) when `cookie` is a live device cookie this server issued to
    /// `username`; `None` for anything else: forged, expired, or another account's.
    pub fn device_of(&self, cookie: &str, username: &str, now: Millis) -> Option<String> {
        let mut parts = cookie.split('.');
        let (user, nonce, issued, tag) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let user = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(user).ok()?;
        let fresh = issued.parse::<Millis>().is_ok_and(|at| at <= now && now - at < DEVICE_TTL);
        let valid = parts.next().is_none()
            && user == username.as_bytes()
            && fresh
            && self.tag_matches("device", &[username, nonce, issued], tag);
        valid.then(|| nonce.to_owned())
    }

    /// The token the sign-in form carries for the form cookie's `nonce`.
    pub fn login_form_token(&self, nonce: &str) -> String {
        self.tag("login form", &[nonce])
    }

    pub fn login_form_token_matches(&self, nonce: &str, sent: &str) -> bool {
        self.tag_matches("login form", &[nonce], sent)
    }
}

/// `scheme://host:port` with the scheme's default port filled in, for comparing origins.
fn origin_key(url: &str) -> Option<(String, String, u16)> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let port = uri.port_u16().or(match scheme.as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    })?;
    Some((scheme, host, port))
}

/// Login CSRF (issue 15, finding 5): a sign-in may not come from another site. Browsers say
/// where a request comes from: `Sec-Fetch-Site` must be `same-origin` (or `none`, a request the
/// person made themselves), and `Origin` must be `public_url`'s origin or the origin the request
/// itself was sent to (its `Host`). Clients that send neither header (the CLI, SDKs) are not
/// browsers and cannot be made to sign in by another site.
pub fn refuse_cross_site(public_url: &str, headers: &HeaderMap) -> ApiResult<()> {
    let refused = || {
        ApiError::new(
            ErrorCode::CsrfFailed,
            "This sign-in did not come from Countersign's own sign-in page, so it was refused.",
        )
    };
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.to_str(), Ok("same-origin" | "none")) {
            return Err(refused());
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let origin = origin_key(origin.to_str().map_err(|_| refused())?).ok_or_else(refused)?;
    let own = origin_key(public_url);
    let requested = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(|host| origin_key(&format!("{}://{host}", origin.0)));
    if own.as_ref() == Some(&origin) || requested.as_ref() == Some(&origin) {
        Ok(())
    } else {
        Err(refused())
    }
}

fn session_cookie(value: String, secure: bool, max_age_seconds: i64) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(time::Duration::seconds(max_age_seconds))
        .build()
}

/// The client's address: the TCP peer, or, when the operator says a balancer sits in front
/// (`trust_forwarded_for`), the last `X-Forwarded-For` entry, the one that balancer appended.
/// Earlier entries are whatever the client sent and are never trusted.
pub fn client_address(trust_forwarded_for: bool, headers: &HeaderMap, peer: SocketAddr) -> String {
    let forwarded = trust_forwarded_for
        .then(|| {
            headers.get_all("x-forwarded-for").iter().next_back()?.to_str().ok()?.rsplit(',').next().map(str::trim)
        })
        .flatten()
        .and_then(|last| last.parse::<std::net::IpAddr>().ok());
    forwarded.unwrap_or(peer.ip()).to_string()
}

/// The client's `User-Agent` header, empty when missing or not text.
pub fn user_agent(headers: &HeaderMap) -> &str {
    headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

fn cookie_header(cookie: Cookie<'static>) -> ApiResult<HeaderValue> {
    cookie.to_string().parse().map_err(|_| ApiError::validation("bad cookie"))
}

/// The `Set-Cookie` value for a device cookie: it goes only to sign-in, and outlives sessions.
pub fn device_cookie_header(app: &AppState, value: String) -> ApiResult<HeaderValue> {
    cookie_header(
        Cookie::build((DEVICE_COOKIE, value))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(app.config.secure_cookies)
            .path("/")
            .max_age(time::Duration::milliseconds(DEVICE_TTL))
            .build(),
    )
}

/// The `Set-Cookie` value for the sign-in form's nonce (for this browser session only).
pub fn login_form_cookie_header(app: &AppState, nonce: String) -> ApiResult<HeaderValue> {
    cookie_header(
        Cookie::build((LOGIN_FORM_COOKIE, nonce))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(app.config.secure_cookies)
            .path("/login")
            .build(),
    )
}

/// The value of the cookie `name` the request carries.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    axum_extra::extract::CookieJar::from_headers(headers).get(name).map(|c| c.value().to_owned())
}

/// The `Set-Cookie` value for a session (an empty value with max-age 0 ends it).
pub fn session_cookie_header(
    app: &AppState,
    session_id: String,
    max_age_seconds: i64,
) -> ApiResult<axum::http::HeaderValue> {
    cookie_header(session_cookie(session_id, app.config.secure_cookies, max_age_seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", v.parse().unwrap());
        }
        map
    }

    #[test]
    fn a_device_cookie_is_bound_to_its_account_and_cannot_be_forged() {
        let key = SignInKey::new("the sign-in key").unwrap();
        let now = 1_800_000_000_000;
        let cookie = key.device_cookie("carol", now);
        let nonce = key.device_of(&cookie, "carol", now + 1000).expect("carol's own device");
        assert!(cookie.contains(&nonce));
        assert_eq!(key.device_of(&cookie, "bob", now), None, "another account's cookie");
        assert_eq!(key.device_of(&cookie, "carol", now + DEVICE_TTL), None, "expired");
        assert_eq!(SignInKey::new("another key").unwrap().device_of(&cookie, "carol", now), None);
        let parts: Vec<&str> = cookie.split('.').collect();
        let bob = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("bob");
        for forged in [
            format!("{bob}.{}.{}.{}", parts[1], parts[2], parts[3]),
            format!("{}.{}.{}.{}", parts[0], parts[1], now + 5, parts[3]),
            format!("{}.other.{}.{}", parts[0], parts[2], parts[3]),
            format!("{cookie}.more"),
            "carol".to_owned(),
            String::new(),
        ] {
            assert_eq!(key.device_of(&forged, "carol", now), None, "{forged}");
            assert_eq!(key.device_of(&forged, "bob", now), None, "{forged}");
        }
        let token = key.login_form_token("nonce");
        assert!(key.login_form_token_matches("nonce", &token));
        assert!(!key.login_form_token_matches("other nonce", &token));
        assert!(!key.login_form_token_matches("nonce", ""));
    }

    #[test]
    fn a_sign_in_from_another_site_is_refused() {
        let public = "https://countersign.example";
        let with = |pairs: &[(&'static str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, value.parse().unwrap());
            }
            map
        };
        let allowed = [
            with(&[]),
            with(&[("origin", "https://countersign.example")]),
            with(&[("origin", "https://countersign.example:443"), ("sec-fetch-site", "same-origin")]),
            with(&[("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")]),
            with(&[("sec-fetch-site", "none")]),
        ];
        for headers in allowed {
            assert!(refuse_cross_site(public, &headers).is_ok(), "{headers:?}");
        }
        let refused = [
            with(&[("origin", "https://evil.example")]),
            with(&[("origin", "null")]),
            with(&[("origin", "http://countersign.example")]),
            with(&[("origin", "https://countersign.example.evil.example")]),
            with(&[("origin", "https://evil.example"), ("host", "countersign.example")]),
            with(&[("sec-fetch-site", "cross-site")]),
            with(&[("sec-fetch-site", "same-site"), ("origin", "https://countersign.example")]),
        ];
        for headers in refused {
            let err = refuse_cross_site(public, &headers).unwrap_err();
            assert_eq!(err.code, ErrorCode::CsrfFailed, "{headers:?}");
        }
    }

    #[test]
    fn beyond_its_workers_and_queue_the_password_pool_answers_busy() {
        let pool = PasswordPool::new(1, 1);
        let first = pool.admit().unwrap();
        let second = pool.admit().unwrap();
        let err = pool.admit().err().unwrap();
        assert_eq!((err.code, err.retry_after), (ErrorCode::ServerBusy, Some(1)));
        drop(first);
        assert!(pool.admit().is_ok(), "a place is free again");
        drop(second);
    }

    /// On a runtime with a single thread, a password check that takes as long as it likes does
    /// not hold up other tasks: it runs on the blocking pool.
    #[tokio::test(flavor = "current_thread")]
    async fn a_slow_check_does_not_stall_other_tasks() {
        let pool = PasswordPool::new(1, 4);
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let slow = pool.admit().unwrap().run(move || {
            let _ = started_tx.send(());
            held.recv().ok();
        });
        let slow = tokio::spawn(slow);
        started.await.unwrap();
        // The worker is busy: another task on this very thread still runs to the end.
        let other = tokio::spawn(async { 1 + 1 });
        assert_eq!(other.await.unwrap(), 2);
        release.send(()).unwrap();
        slow.await.unwrap().unwrap();
    }

    #[test]
    fn the_client_address_is_the_peer_unless_the_balancer_is_trusted() {
        let peer: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let sent = headers(&["203.0.113.9, 198.51.100.7"]);
        assert_eq!(client_address(false, &sent, peer), "10.0.0.5", "forwarded headers are ignored by default");
        assert_eq!(client_address(true, &sent, peer), "198.51.100.7", "the entry the balancer appended");
        assert_eq!(client_address(true, &headers(&["1.1.1.1", "192.0.2.4"]), peer), "192.0.2.4");
        assert_eq!(client_address(true, &headers(&["not an address"]), peer), "10.0.0.5");
        assert_eq!(client_address(true, &HeaderMap::new(), peer), "10.0.0.5");
    }
}
