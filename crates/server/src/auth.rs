//! Authentication plumbing: password hashing (Argon2id), secrets and token hashes, the session
//! cookie and the client's address. The operations that use them are in `ops::own`.

use crate::error::{ApiError, ApiResult};
use crate::extract::SESSION_COOKIE;
use crate::AppState;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::http::HeaderMap;
use axum_extra::extract::cookie::{Cookie, SameSite};
use base64::Engine;
use countersign_core::Millis;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::OnceLock;

pub const SESSION_TTL: Millis = 12 * 60 * 60 * 1000;
/// Sign-in rate limit: failures counted over this window...
pub const FAILURE_WINDOW: Millis = 15 * 60 * 1000;
/// ...at most this many per username...
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
/// ...and this many per client address.
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;

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

/// The `Set-Cookie` value for a session (an empty value with max-age 0 ends it).
pub fn session_cookie_header(
    app: &AppState,
    session_id: String,
    max_age_seconds: i64,
) -> ApiResult<axum::http::HeaderValue> {
    session_cookie(session_id, app.config.secure_cookies, max_age_seconds)
        .to_string()
        .parse()
        .map_err(|_| ApiError::validation("bad cookie"))
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
