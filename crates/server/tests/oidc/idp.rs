//! The OpenID provider the single sign-on tests sign in at: `oidc-provider` (OpenID Certified),
//! run with the machine's Node.js from `provider.mjs` beside this file, the package installed
//! outside the clone (`COUNTERSIGN_OIDC_NODE_MODULES`, default `/work/.npm-oidc`; `.ci/run`
//! installs it from `package-lock.json` here). Shared by the e2e and browser tests.

use countersign_server::sso::{GroupMappingSettings, Provider, ProviderSettings};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

const CLIENT_ID: &str = "countersign-test";
const CLIENT_SECRET: &str = "a client secret for the tests only";

/// The provider's process, ended when the test ends.
pub struct Idp {
    child: Child,
    pub issuer: String,
    accounts: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Idp {
    /// Starts the provider on `host` (its issuer is `http://<host>:<port>`) with these accounts
    /// (subject → claims), or says why it cannot (one `skipped:` line; a failure under
    /// `COUNTERSIGN_REQUIRE_ALL_TESTS=1`).
    pub fn start(host: &str, what: &str, accounts: &Value) -> Option<Idp> {
        let modules = std::env::var("COUNTERSIGN_OIDC_NODE_MODULES").unwrap_or_else(|_| "/work/.npm-oidc".into());
        let installed = PathBuf::from(&modules).join("node_modules/oidc-provider/package.json");
        if !installed.exists() {
            countersign_store::testing::skip(
                what,
                &format!("oidc-provider is not installed in {modules} (.ci/run installs it)"),
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let accounts_file = dir.path().join("accounts.json");
        std::fs::write(&accounts_file, accounts.to_string()).unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc/provider.mjs");
        let spawned = Command::new("node")
            .arg(&script)
            .env("OIDC_NODE_MODULES", &modules)
            .env("OIDC_ACCOUNTS_FILE", &accounts_file)
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_HOST", host)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                countersign_store::testing::skip(what, &format!("node cannot be started: {e}"));
                return None;
            }
        };
        // Its stdout is read on a thread of its own to the end, so that the provider never writes
        // to a closed pipe (which ends it), and so that a provider that hangs fails the test in
        // time instead of holding it up.
        let stdout = child.stdout.take().unwrap();
        let (issuer_tx, issuer_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("issuer ") {
                    let _ = issuer_tx.send(issuer.to_owned());
                }
            }
        });
        let Ok(issuer) = issuer_rx.recv_timeout(std::time::Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!("the OpenID provider did not start (run tests/oidc/provider.mjs by hand to see why)");
        };
        Some(Idp { child, issuer, accounts: accounts_file, _dir: dir })
    }

    pub fn set_accounts(&self, accounts: &Value) {
        std::fs::write(&self.accounts, accounts.to_string()).unwrap();
    }

    pub fn provider(&self, create_accounts: bool, mappings: &[(&str, &str)]) -> Provider {
        Provider::from_settings(&ProviderSettings {
            id: "test".into(),
            display_name: "Test IdP".into(),
            issuer: self.issuer.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: Some(CLIENT_SECRET.to_owned().into()),
            client_secret_file: None,
            scopes: Some(vec!["email".into(), "profile".into(), "groups".into()]),
            create_accounts,
            username_claim: None,
            groups_claim: Some("groups".into()),
            group_mappings: mappings
                .iter()
                .map(|(claim, group)| GroupMappingSettings { claim: (*claim).into(), group: (*group).into() })
                .collect(),
            remove_from_mapped_groups: None,
            allowed_email_domains: vec![],
        })
        .unwrap()
    }
}
