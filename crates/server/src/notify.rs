//! Delivering the notification outbox: signed webhooks, Slack and Teams incoming webhooks, and
//! e-mail over SMTP. Retries back off exponentially until `delivery_max_age`, then the delivery
//! is dead (listed, and retryable by hand).
//!
//! Everything a person typed (a justification, notes, an object's or a person's name) is inert
//! in each channel's markup, so it can neither dress a link up as ours nor forge emphasis:
//! Slack gets it in `plain_text` objects (and `&`, `<`, `>` escaped in the mrkdwn fallback),
//! Teams in `TextRun`s (which render no markdown), e-mail HTML-escaped. Hidden characters are
//! escaped on every channel (`text::shown`), so no line is forged and nothing reversed. The
//! only link is the request's, made from `public_url`.

use crate::{outbound, AppState};
use countersign_core::notify::Notice;
use countersign_core::state::ChannelKind;
use countersign_core::text::shown;
use countersign_core::Millis;
use countersign_store::Delivery;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;

/// `X-Countersign-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`.
pub fn signature(secret: &str, unix_seconds: i64, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this branch cannot be reached.
        Err(_) => return String::new(),
    };
    mac.update(format!("{unix_seconds}.{body}").as_bytes());
    format!("t={unix_seconds},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The delay before attempt `attempts + 1`: 10 s, 20 s, 40 s, … at most an hour.
pub fn backoff(attempts: i64) -> Millis {
    let exponent = attempts.clamp(0, 20) as u32;
    (10_000_i64.saturating_mul(2_i64.saturating_pow(exponent))).min(3_600_000)
}

/// The request's page: the one link a notification carries, made from `public_url` and the
/// request's id (percent-encoded, though the store makes ids), never from anything typed.
fn request_url(app: &AppState, notice: &Notice) -> String {
    match &notice.request {
        Some(request) => format!(
            "{}/requests/{}",
            app.config.public_url.trim_end_matches('/'),
            crate::web::urlencode(&request.id).replace('/', "%2F")
        ),
        None => app.config.public_url.clone(),
    }
}

/// One line saying what happened, for chat fallbacks and subjects; hidden characters escaped.
fn summary(notice: &Notice) -> String {
    let Some(r) = &notice.request else {
        return "Countersign test message: this channel works.".to_owned();
    };
    let line = format!(
        "{}: {} {} “{}” requested by {}",
        notice.headline,
        r.operation,
        r.resource_type,
        r.object_name,
        r.requested_by.named()
    );
    shown(&line).into_owned()
}

/// The facts of a notice as (title, value): the titles are ours, the values are typed by
/// people and have their hidden characters escaped; each channel escapes them for its markup.
fn facts(notice: &Notice) -> Vec<(&'static str, String)> {
    let Some(r) = &notice.request else { return vec![] };
    let mut facts = vec![
        ("Object", format!("{} ({})", r.object_name, r.resource_type)),
        ("Operation", r.operation.to_string()),
        ("Requested by", r.requested_by.named()),
        ("Status", r.status.to_string()),
        ("Business justification", r.justification.clone()),
    ];
    if let Some(by) = &r.decided_by {
        facts.push(("Decision by", by.named()));
    }
    if let Some(notes) = &r.notes {
        facts.push(("Approver notes", notes.clone()));
    }
    facts.into_iter().map(|(title, value)| (title, shown(&value).into_owned())).collect()
}

/// Slack's reserved characters in mrkdwn, as Slack documents: `&`, `<`, `>` as HTML entities.
/// Nothing can then open a link (`<url|text>`), a mention (`<!channel>`) or an entity.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A Block Kit `plain_text` object: Slack parses no link, mention or formatting in it. Slack
/// refuses empty ones and more than 3000 characters.
fn slack_plain(text: &str) -> Value {
    let text = if text.is_empty() { "—".to_owned() } else { clip(text, 2900) };
    json!({"type": "plain_text", "text": text, "emoji": false})
}

/// `text` cut to at most `max` characters, marked when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// Slack incoming-webhook message with Block Kit blocks (and `text` as the fallback, which
/// Slack parses as mrkdwn: escaped). One section per fact: our title in mrkdwn, the value in
/// plain text.
pub fn slack_message(notice: &Notice, url: &str) -> Value {
    let mut blocks =
        vec![json!({"type": "header", "text": {"type": "plain_text", "text": notice.headline, "emoji": false}})];
    if notice.request.is_some() {
        for (title, value) in facts(notice) {
            blocks.push(json!({"type": "section", "fields": [
                {"type": "mrkdwn", "text": format!("*{title}*")},
                slack_plain(&value),
            ]}));
        }
        blocks.push(json!({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open request"}, "url": url}
        ]}));
    }
    json!({"text": slack_escape(&summary(notice)), "blocks": blocks})
}

/// Microsoft Teams incoming-webhook message carrying an Adaptive Card. TextBlocks and Fact
/// values render a markdown subset (links, emphasis, lists), so what people typed goes only
/// into `TextRun`s of a `RichTextBlock`, which render none: one block per fact, our title in
/// bold, then the value.
pub fn teams_message(notice: &Notice, url: &str) -> Value {
    let mut body =
        vec![json!({"type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": notice.headline, "wrap": true})];
    if notice.request.is_some() {
        for (title, value) in facts(notice) {
            body.push(json!({"type": "RichTextBlock", "inlines": [
                {"type": "TextRun", "text": format!("{title}: "), "weight": "Bolder"},
                {"type": "TextRun", "text": value},
            ]}));
        }
    } else {
        body.push(json!({"type": "TextBlock", "text": summary(notice), "wrap": true}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": [{"type": "Action.OpenUrl", "title": "Open request", "url": url}],
            },
        }],
    })
}

async fn post_json(
    client: &reqwest::Client,
    target: &str,
    body: String,
    signature: Option<(String, &str)>,
) -> Result<(), String> {
    let mut request = client.post(target).header("content-type", "application/json").body(body);
    if let Some((signature, event_id)) = signature {
        request = request.header("X-Countersign-Signature", signature).header("X-Countersign-Event-Id", event_id);
    }
    let response = request.send().await.map_err(|e| match outbound::refused_in(&e) {
        Some(refused) => format!("not sent: {refused}"),
        None => format!("cannot reach the receiver: {}", e.without_url()),
    })?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered HTTP {}", response.status().as_u16()))
    }
}

/// A delivery's error as shown to readers without the right to change channels: the class of
/// the receiver's answer, never its code or a network detail.
pub fn failure_class(error: &str) -> &'static str {
    match error.strip_prefix("the receiver answered HTTP ").and_then(|code| code.chars().next()) {
        Some('3') => "the receiver answered a redirect (3xx)",
        Some('4') => "the receiver refused the message (4xx)",
        Some('5') => "the receiver failed (5xx)",
        _ if error.starts_with("not sent: ") => "not sent: the address is not allowed",
        _ => "not delivered",
    }
}

/// An e-mail's subject and its plain-text and HTML parts.
pub struct Email {
    pub subject: String,
    pub plain: String,
    pub html: String,
}

/// The e-mail telling of `notice`, linking to `url`.
/// The plain part and the subject have hidden characters escaped (a line break in a subject
/// would be header injection); the HTML part is also HTML-escaped.
pub fn email(notice: &Notice, url: &str) -> Email {
    let mut plain = format!("{}\n\n", summary(notice));
    let mut html = format!("<h2>{}</h2><table>", escape(&notice.headline));
    for (title, value) in facts(notice) {
        plain.push_str(&format!("{title}: {value}\n"));
        html.push_str(&format!("<tr><th align=\"left\">{}</th><td>{}</td></tr>", escape(title), escape(&value)));
    }
    plain.push_str(&format!("\nOpen the request: {url}\n"));
    html.push_str(&format!("</table><p><a href=\"{}\">Open the request</a></p>", escape(url)));
    Email { subject: format!("[Countersign] {}", summary(notice)), plain, html }
}

async fn send_email(app: &AppState, delivery: &Delivery, url: &str) -> Result<(), String> {
    use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let (Some(smtp_url), Some(from)) = (&app.config.smtp_url, &app.config.smtp_from) else {
        return Err("e-mail is not configured (smtp.url and smtp.from)".into());
    };
    let to = delivery.recipient.as_deref().ok_or("an e-mail delivery needs a recipient")?;
    let Email { subject, plain, html } = email(&delivery.payload, url);
    let message = Message::builder()
        .from(from.parse::<Mailbox>().map_err(|e| format!("smtp.from: {e}"))?)
        .to(to.parse::<Mailbox>().map_err(|e| format!("recipient {to}: {e}"))?)
        .subject(subject)
        .header(lettre::message::header::MessageId::from(format!(
            "<{}.{}@countersign>",
            delivery.event_id, delivery.id
        )))
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(plain))
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
        )
        .map_err(|e| format!("cannot build the message: {e}"))?;
    // The URL may carry a password: never echo it (or a parser's view of it) into an error.
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url.expose_secret())
        .map_err(|_| "smtp.url is not a valid SMTP URL (smtp://, smtps://)".to_owned())?
        .timeout(Some(Duration::from_secs(15)))
        .build();
    transport.send(message).await.map(|_| ()).map_err(|e| format!("the SMTP server refused: {e}"))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Delivers one message on its channel.
pub async fn deliver(app: &AppState, client: &reqwest::Client, delivery: &Delivery) -> Result<(), String> {
    let url = request_url(app, &delivery.payload);
    let target = delivery.channel_secret.url.as_deref().unwrap_or_default();
    if delivery.channel_kind != ChannelKind::Email {
        // An address in the URL itself is never resolved, so the client's resolver cannot see it.
        outbound::check_literal(target, &outbound::Allow::new(&app.config.notify_allow_networks))
            .map_err(|why| format!("not sent: {why}"))?;
    }
    match delivery.channel_kind {
        ChannelKind::Webhook => {
            let mut body = json!(delivery.payload);
            body["url"] = json!(url);
            let body = body.to_string();
            let signed = signature(&delivery.channel_secret.signing_secret, app.now() / 1000, &body);
            post_json(client, target, body, Some((signed, &delivery.event_id))).await
        }
        ChannelKind::Slack => post_json(client, target, slack_message(&delivery.payload, &url).to_string(), None).await,
        ChannelKind::Teams => post_json(client, target, teams_message(&delivery.payload, &url).to_string(), None).await,
        ChannelKind::Email => send_email(app, delivery, &url).await,
    }
}

/// Claims and delivers what is due, once. Returns how many were attempted.
pub async fn dispatch_once(app: &AppState, client: &reqwest::Client) -> usize {
    let now = app.now();
    let due = match app.store.claim_deliveries(now, 60_000, 25).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "cannot claim notifications");
            return 0;
        }
    };
    let attempted = due.len();
    let results = futures::future::join_all(due.iter().map(|d| deliver(app, client, d))).await;
    for (delivery, result) in due.iter().zip(results) {
        let now = app.now();
        let recorded = match result {
            Ok(()) => app.store.delivery_succeeded(&delivery.id, now).await,
            Err(error) => {
                let retry_at = now + backoff(delivery.attempts);
                let give_up = retry_at - delivery.created_at > app.config.delivery_max_age;
                tracing::info!(delivery = %delivery.id, channel = %delivery.channel_id, %error, give_up, "notification not delivered");
                app.store.delivery_failed(&delivery.id, &error, (!give_up).then_some(retry_at)).await
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "cannot record a delivery");
        }
    }
    attempted
}

/// The dispatcher: safe on every replica, since deliveries are claimed before they are sent.
pub async fn dispatch_forever(app: AppState) {
    let client = match outbound::client(&outbound::Allow::new(&app.config.notify_allow_networks)) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client; notifications are not delivered");
            return;
        }
    };
    let mut interval = tokio::time::interval(app.config.notify_interval);
    loop {
        interval.tick().await;
        while dispatch_once(&app, &client).await > 0 {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_documented_scheme() {
        // HMAC-SHA256("secret", "1700000000.{}")
        let sig = signature("secret", 1_700_000_000, "{}");
        assert!(sig.starts_with("t=1700000000,v1="));
        assert_eq!(sig.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(sig, signature("other", 1_700_000_000, "{}"));
        assert_ne!(sig, signature("secret", 1_700_000_001, "{}"));
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(0), 10_000);
        assert_eq!(backoff(1), 20_000);
        assert_eq!(backoff(3), 80_000);
        assert_eq!(backoff(30), 3_600_000);
    }

    fn event() -> Notice {
        serde_json::from_value(json!({"id": "e1", "type": "request.created", "headline": "New approval request",
            "occurredAt": 0, "request": {
            "id": "r1", "objectName": "Zoom", "resourceType": "app", "operation": "update", "status": "needsApproval",
            "justification": "CVE fix", "requestedBy": {"id": "a1", "displayName": "Alice"}, "approvals": 0,
            "requiredApprovals": 1, "notes": null, "expiresAt": 0, "failureReason": null}}))
        .unwrap()
    }

    /// Slack's documented incoming-webhook shape: `text` plus Block Kit `blocks`, a header
    /// block of plain_text, section fields of mrkdwn, and a button with a URL.
    #[test]
    fn slack_messages_have_the_block_kit_shape() {
        let m = slack_message(&event(), "https://cs.example/requests/r1");
        assert!(m["text"].as_str().unwrap().contains("Zoom"));
        assert_eq!(m["blocks"][0]["type"], "header");
        assert_eq!(m["blocks"][0]["text"]["type"], "plain_text");
        assert_eq!(m["blocks"][1]["type"], "section");
        let sections: Vec<&Value> = m["blocks"].as_array().unwrap().iter().filter(|b| b["type"] == "section").collect();
        assert_eq!(sections.len(), 5, "one per fact");
        for section in sections {
            let fields = section["fields"].as_array().unwrap();
            assert_eq!((fields[0]["type"].as_str(), fields[1]["type"].as_str()), (Some("mrkdwn"), Some("plain_text")));
            assert!(fields.len() <= 10, "Slack allows at most 10 fields");
        }
        assert_eq!(m["blocks"][6]["elements"][0]["type"], "button");
        assert_eq!(m["blocks"][6]["elements"][0]["url"], "https://cs.example/requests/r1");
    }

    /// Teams' documented incoming-webhook shape: a `message` with one adaptive-card attachment.
    #[test]
    fn teams_messages_carry_an_adaptive_card() {
        let m = teams_message(&event(), "https://cs.example/requests/r1");
        assert_eq!(m["type"], "message");
        let attachment = &m["attachments"][0];
        assert_eq!(attachment["contentType"], "application/vnd.microsoft.card.adaptive");
        let card = &attachment["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["$schema"], "http://adaptivecards.io/schemas/adaptive-card.json");
        assert_eq!(card["body"][0]["type"], "TextBlock");
        assert_eq!(card["body"][1]["type"], "RichTextBlock");
        assert_eq!(card["body"][1]["inlines"][1]["type"], "TextRun");
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    }
    /// What an attacker who can submit a request, or choose a display name, would send.
    const HOSTILE: &str = "<https://evil.example|Open request> [Open request](https://evil.example) \
        ![x](https://evil.example/x.png) *bold* _it_ <!channel> &amp; \u{1b}[2K\rforged\nline \u{202e}txt";

    fn hostile_event() -> Notice {
        let mut notice = event();
        notice.kind = "request.rejected".into();
        notice.headline = "Request rejected".into();
        let request = notice.request.as_mut().unwrap();
        request.justification = HOSTILE.into();
        request.object_name = format!("Zoom {HOSTILE}");
        request.notes = Some(HOSTILE.into());
        request.requested_by.display_name = format!("Mallory {HOSTILE}");
        request.requested_by.username = "mallory".into();
        request.decided_by = Some(countersign_core::notify::NoticeActor {
            id: "a2".into(),
            display_name: "Bob".into(),
            username: "bob".into(),
        });
        notice
    }

    /// Every string in a JSON document, with the key it is under.
    fn strings<'a>(value: &'a Value, key: &'a str, out: &mut Vec<(&'a str, &'a str)>) {
        match value {
            Value::String(s) => out.push((key, s)),
            Value::Array(items) => items.iter().for_each(|v| strings(v, key, out)),
            Value::Object(map) => map.iter().for_each(|(k, v)| strings(v, k, out)),
            _ => {}
        }
    }

    /// Objects of a JSON document that have a `type` field, with that type.
    fn typed<'a>(value: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
        match value {
            Value::Array(items) => items.iter().for_each(|v| typed(v, out)),
            Value::Object(map) => {
                if let Some(Value::String(t)) = map.get("type") {
                    out.push((t, value));
                }
                map.values().for_each(|v| typed(v, out));
            }
            _ => {}
        }
    }

    fn no_hidden_characters(message: &Value) {
        let mut all = vec![];
        strings(message, "", &mut all);
        for (key, s) in all {
            assert!(!s.chars().any(countersign_core::text::is_hidden), "{key}: {s:?} carries a hidden character");
        }
    }

    /// The only link is the request's, built from `public_url`.
    fn only_our_link(message: &Value, url: &str) {
        let mut all = vec![];
        strings(message, "", &mut all);
        let urls: Vec<_> = all.iter().filter(|(k, _)| k.to_ascii_lowercase().contains("url")).collect();
        assert!(urls.iter().all(|(_, u)| *u == url || u.starts_with("http://adaptivecards.io/")), "{urls:?}");
    }

    /// Slack: user text only in plain_text objects (Block Kit parses neither links nor
    /// formatting there); the mrkdwn fallback `text` with `&`, `<`, `>` escaped.
    #[test]
    fn slack_shows_hostile_text_inert() {
        let url = "https://cs.example/requests/r1";
        let m = slack_message(&hostile_event(), url);
        no_hidden_characters(&m);
        only_our_link(&m, url);
        let mut objects = vec![];
        typed(&m, &mut objects);
        for (kind, object) in &objects {
            if *kind == "mrkdwn" {
                let text = object["text"].as_str().unwrap();
                assert!(!text.contains("evil") && !text.contains("Mallory") && !text.contains("Zoom"), "{text}");
            }
        }
        let plain: Vec<&str> =
            objects.iter().filter(|(k, _)| *k == "plain_text").map(|(_, o)| o["text"].as_str().unwrap()).collect();
        assert!(plain.iter().any(|t| t.contains("<https://evil.example|Open request>")), "shown, as text: {plain:?}");
        assert!(plain.iter().any(|t| t.contains("\\u{1b}[2K\\u{d}forged\\u{a}line \\u{202e}txt")), "{plain:?}");
        assert!(plain.iter().any(|t| t.contains("(@mallory)")), "R20: the requester's username: {plain:?}");
        assert!(plain.iter().any(|t| t == &"Bob (@bob)"), "R20: the approver, named: {plain:?}");
        let fallback = m["text"].as_str().unwrap();
        assert!(!fallback.contains('<') && !fallback.contains('>'), "{fallback}");
        assert!(
            fallback.contains("&lt;https://evil.example|Open request&gt;") && fallback.contains("&amp;amp;"),
            "{fallback}"
        );
        assert!(fallback.contains("(@mallory)"), "{fallback}");
    }

    /// Teams: TextBlock and Fact values render a markdown subset, TextRun none: user text only
    /// in TextRuns, which have no select action.
    #[test]
    fn teams_shows_hostile_text_inert() {
        let url = "https://cs.example/requests/r1";
        let m = teams_message(&hostile_event(), url);
        no_hidden_characters(&m);
        only_our_link(&m, url);
        let mut objects = vec![];
        typed(&m, &mut objects);
        assert!(objects.iter().all(|(k, _)| *k != "FactSet"), "Fact values render markdown");
        for (kind, object) in &objects {
            if *kind == "TextBlock" {
                assert_eq!(object["text"], "Request rejected", "only our own words in a TextBlock");
            }
            if *kind == "TextRun" {
                assert!(object.get("selectAction").is_none());
            }
        }
        let runs: Vec<&str> =
            objects.iter().filter(|(k, _)| *k == "TextRun").map(|(_, o)| o["text"].as_str().unwrap()).collect();
        assert!(runs.iter().any(|t| t.contains("[Open request](https://evil.example)")), "shown, as text: {runs:?}");
        assert!(runs.iter().any(|t| t.contains("(@mallory)")) && runs.contains(&"Bob (@bob)"), "R20: {runs:?}");
    }

    /// E-mail: the HTML part escaped, the plain part and the subject without hidden characters
    /// (a newline in a subject would be header injection).
    #[test]
    fn email_shows_hostile_text_inert() {
        let url = "https://cs.example/requests/r1";
        let Email { subject, plain, html } = email(&hostile_event(), url);
        assert!(!subject.chars().any(countersign_core::text::is_hidden), "{subject:?}");
        assert!(subject.contains("Mallory") && subject.contains("(@mallory)"), "{subject}");
        assert_eq!(html.matches("<a ").count(), 1, "one link, ours: {html}");
        assert!(html.contains(&format!("<a href=\"{url}\">")), "{html}");
        assert!(html.contains("&lt;https://evil.example|Open request&gt;") && html.contains("&amp;amp;"), "{html}");
        assert!(!html.chars().any(|c| countersign_core::text::is_hidden(c) && c != '\n'), "{html:?}");
        let lines: Vec<&str> = plain.lines().collect();
        assert!(lines.iter().all(|l| !l.starts_with("forged") && !l.starts_with("line")), "no forged lines: {plain}");
        assert!(plain.contains("\\u{1b}[2K\\u{d}forged\\u{a}line \\u{202e}txt"), "{plain}");
        assert!(plain.contains("Bob (@bob)") && plain.contains("(@mallory)"), "{plain}");
        assert!(!plain.chars().any(|c| countersign_core::text::is_hidden(c) && c != '\n'), "{plain:?}");
    }
}
