//! The page shell (left navigation, header, notices), status badges, and the embedded assets.

use super::WebUser;
use axum::response::{Html, IntoResponse, Response};
use countersign_core::permission::Permission;
use countersign_core::request::RequestStatus;
use maud::{html, Markup, DOCTYPE};

pub const CSS: &str = include_str!("assets/app.css");
pub const JS: &str = include_str!("assets/app.js");
/// Passkeys and step-up (issue 17, R21): WebAuthn is a browser API.
pub const PASSKEYS_JS: &str = include_str!("assets/passkeys.js");

/// Navigation entries: (path, label, permission needed to see it).
const NAV: &[(&str, &str, Option<Permission>)] = &[
    ("/", "Home", None),
    ("/requests", "Requests", None),
    ("/policies", "Access policies", Some(Permission::AccessPoliciesRead)),
    ("/resources/app", "Apps", Some(Permission::AppsRead)),
    ("/resources/script", "Scripts", Some(Permission::ScriptsRead)),
    ("/resources/compliancePolicy", "Compliance policies", Some(Permission::CompliancePoliciesRead)),
    ("/resources/configurationPolicy", "Configuration policies", Some(Permission::ConfigurationPoliciesRead)),
    ("/resources/deviceCategory", "Device categories", Some(Permission::TenantConfigurationRead)),
    ("/devices", "Devices", Some(Permission::DevicesRead)),
    ("/roles", "Roles", Some(Permission::RolesRead)),
    ("/groups", "Groups", Some(Permission::GroupsRead)),
    ("/accounts", "Accounts", Some(Permission::AccountsRead)),
    ("/notifications", "Notifications", Some(Permission::TenantConfigurationRead)),
    ("/audit", "Audit log", Some(Permission::AuditRead)),
    ("/account", "My account", None),
];

fn head(title: &str) -> Markup {
    html! {
        (DOCTYPE)
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · Countersign" }
        link rel="stylesheet" href="/assets/app.css";
        script src="/assets/app.js" defer {}
        script src="/assets/passkeys.js" defer {}
    }
}

/// A page without navigation (sign-in, errors).
pub fn bare(title: &str, content: Markup) -> Html<String> {
    Html(
        html! {
            html lang="en" {
                head { (head(title)) }
                body class="bare" { main id="main" { (content) } }
            }
        }
        .into_string(),
    )
}

/// A page without navigation that sends the browser on to `to` by itself (a meta refresh, with a
/// link for when it does not). Single sign-on uses it where a redirect would not do: after the
/// provider's cross-site redirect back, a navigation this site starts itself is same-site, so the
/// `SameSite=Strict` session cookie goes with it; and a form may not redirect to another site
/// (`form-action 'self'`), but a page may send the browser there.
pub fn bare_onward(title: &str, to: &str, content: Markup) -> Html<String> {
    Html(
        html! {
            html lang="en" {
                head { (head(title)) meta http-equiv="refresh" content={ "0;url=" (to) }; }
                body class="bare" { main id="main" { (content) p { a class="button" id="continue" href=(to) { "Continue" } } } }
            }
        }
        .into_string(),
    )
}

/// A page of the admin center for a signed-in administrator.
pub struct Page<'a> {
    title: String,
    user: &'a WebUser,
    notice: Option<String>,
    active: Option<&'a str>,
    content: Markup,
}

impl<'a> Page<'a> {
    pub fn new(title: &str, user: &'a WebUser) -> Self {
        Page { title: title.to_owned(), user, notice: user.flash.clone(), active: None, content: html! {} }
    }

    /// A notice of this response's own (the session's flash otherwise).
    pub fn notice(mut self, notice: Option<String>) -> Self {
        if let Some(notice) = notice.filter(|n| !n.is_empty()) {
            self.notice = Some(notice);
        }
        self
    }

    /// Marks a navigation entry as the current section.
    pub fn section(mut self, path: &'a str) -> Self {
        self.active = Some(path);
        self
    }

    pub fn content(mut self, content: Markup) -> Self {
        self.content = content;
        self
    }
}

impl IntoResponse for Page<'_> {
    fn into_response(self) -> Response {
        let account = &self.user.principal.account;
        let active = self.active.unwrap_or("");
        Html(
            html! {
                html lang="en" {
                    head { (head(&self.title)) }
                    body {
                        a class="skip" href="#main" { "Skip to content" }
                        div class="shell" {
                            nav class="sidebar" aria-label="Main" {
                                a class="brand" href="/" { span class="logo" aria-hidden="true" { "✓✓" } " Countersign" }
                                ul {
                                    @for (path, label, permission) in NAV {
                                        @if permission.is_none_or(|p| self.user.principal.has(p)) {
                                            li { a href=(path) aria-current=[(*path == active).then_some("page")] { (label) } }
                                        }
                                    }
                                }
                            }
                            div class="main-column" {
                                header class="topbar" {
                                    span class="who" { "Signed in as " strong { (countersign_core::text::shown(&account.display_name)) } " (" (account.username) ")" }
                                    form method="post" action="/logout" class="inline" {
                                        (csrf_field(&self.user.csrf))
                                        button type="submit" class="link" { "Sign out" }
                                    }
                                }
                                main id="main" {
                                    h1 { (self.title) }
                                    @if let Some(notice) = &self.notice {
                                        p class="alert alert-success" role="status" id="notice" { (countersign_core::text::shown(notice)) }
                                    }
                                    (self.content)
                                }
                            }
                        }
                    }
                }
            }
            .into_string(),
        )
        .into_response()
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

pub fn status_label(status: RequestStatus) -> &'static str {
    match status {
        RequestStatus::NeedsApproval => "Needs approval",
        RequestStatus::Approved => "Approved",
        RequestStatus::Completed => "Completed",
        RequestStatus::Rejected => "Rejected",
        RequestStatus::Cancelled => "Cancelled",
        RequestStatus::Expired => "Expired",
        RequestStatus::Failed => "Failed",
    }
}

/// A coloured badge that also says its status in words.
pub fn status_badge(status: RequestStatus) -> Markup {
    html! { span class={ "badge status-" (status.as_str()) } { (status_label(status)) } }
}

/// R20: a person as every page names them: the display name (hidden characters escaped) and
/// the immutable username beside it, which tells apart two names that look alike.
pub fn who(display_name: &str, username: &str) -> Markup {
    html! {
        span class="person" { (countersign_core::text::shown(display_name)) " " span class="muted username" { "(" (username) ")" } }
    }
}

/// R20: the warning shown beside an account whose display name, kept from before names were
/// checked, is too like another's; `None` shows nothing.
pub fn name_flag(flag: Option<&str>) -> Markup {
    html! {
        @if let Some(reason) = flag {
            " " span class="badge name-flagged" title=(reason) { "⚠ display name flagged" }
        }
    }
}

/// "2026-11-22 09:14 UTC", for people.
pub fn when(ms: countersign_core::Millis) -> String {
    let iso = crate::time::format(ms);
    match (iso.get(..10), iso.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => iso,
    }
}

/// Indented JSON that shows every character a screen would hide (R12) as a JSON `\uXXXX`
/// escape, so it still reads back as the same document from an edit form. Pretty-printing puts
/// raw line breaks only between tokens; inside strings serde_json has already escaped them.
pub fn pretty(value: &serde_json::Value) -> String {
    countersign_core::text::json_shown(&serde_json::to_string_pretty(value).unwrap_or_default()).into_owned()
}
