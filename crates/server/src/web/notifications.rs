//! *Notifications*: channels (add, test) and deliveries (with dead letters, retried by hand).
//! Channel changes are tenant configuration and go through the gate like every change.

use super::layout::{csrf_field, when};
use super::{after_change, given, see_other, web, Page, WebResult, WebUser};
use crate::ops::notifications::{
    create_channel, deliveries, list_channels, retry_delivery, test_channel, ChannelInput, DeliveryQuery,
};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum_extra::extract::Form;
use countersign_core::notify::DeliveryStatus;
use countersign_core::permission::Permission;
use countersign_core::state::ObjectState;
use maud::html;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct PageQuery {
    status: Option<String>,
}

/// `GET /notifications`
pub async fn page(State(app): State<AppState>, user: WebUser, Query(q): Query<PageQuery>) -> WebResult {
    let channels: Vec<_> = web(list_channels(&app, &user.principal).await)?
        .into_iter()
        .filter_map(|c| match c.state {
            ObjectState::NotificationChannel(state) => Some((c.id, state)),
            _ => None,
        })
        .collect();
    let query = DeliveryQuery { status: q.status.clone(), limit: Some(50) };
    let deliveries = web(deliveries(&app, &user.principal, &query).await)?;
    let can_write = user.principal.has(Permission::TenantConfigurationWrite);
    Ok(Page::new("Notifications", &user)
        .section("/notifications")
        .content(html! {
            h2 { "Channels" }
            @if channels.is_empty() { p class="card muted" { "No channels yet: nobody is told about requests." } } @else {
                div class="table-wrap" { table id="channels" {
                    thead { tr { th { "Name" } th { "Kind" } th { "Target" } th { "State" } @if can_write { th {} } } }
                    tbody { @for (id, c) in &channels { tr {
                        td { (c.display_name) }
                        td { (c.kind) }
                        td { code { (c.target.as_deref().unwrap_or("—")) } }
                        td { (if c.enabled { "enabled" } else { "disabled" }) }
                        @if can_write { td { form method="post" action={ "/notifications/channels/" (id) "/test" } {
                            (csrf_field(&user.csrf)) button type="submit" class="link" { "Send a test message" }
                        } } }
                    } } }
                } }
            }
            @if can_write {
                form class="card" method="post" action="/notifications/channels" {
                    (csrf_field(&user.csrf))
                    h3 { "Add a channel" }
                    div class="grid-2" {
                        div class="field" { label for="channel-name" { "Name" } input type="text" id="channel-name" name="display_name" required; }
                        div class="field" { label for="channel-kind" { "Kind" } select id="channel-kind" name="kind" {
                            option value="webhook" { "Webhook (signed JSON)" } option value="slack" { "Slack" } option value="teams" { "Microsoft Teams" } option value="email" { "E-mail" }
                        } }
                        div class="field" { label for="channel-url" { "Webhook URL" } input type="text" id="channel-url" name="url"; p class="hint" { "Not needed for e-mail." } }
                        div class="field" { label for="channel-secret" { "Signing secret" } input type="password" id="channel-secret" name="signing_secret" autocomplete="off"; p class="hint" { "Webhooks only; at least 16 characters. Never shown again." } }
                    }
                    div class="field" { label for="channel-justification" { "Business justification" span class="muted" { " (needed when tenant configuration is protected)" } } textarea id="channel-justification" name="justification" maxlength="1024" {} }
                    button type="submit" id="add-channel" { "Add channel" }
                }
            }
            h2 { "Deliveries" }
            nav class="tabs" aria-label="Delivery status" {
                @for (key, label) in [("", "All"), ("pending", "Pending"), ("delivered", "Delivered"), ("dead", "Dead")] {
                    a href={ "/notifications?status=" (key) } aria-current=[(q.status.as_deref().unwrap_or("") == key).then_some("page")] { (label) }
                }
            }
            div class="table-wrap" { table id="deliveries" {
                thead { tr { th { "Created" } th { "Event" } th { "To" } th { "Status" } th { "Attempts" } th { "Last error" } @if can_write { th {} } } }
                tbody { @for d in &deliveries { tr {
                    td { (when(d.created_at)) } td { (d.event_type) } td { (d.recipient.as_deref().unwrap_or("channel")) }
                    td { (d.status) } td { (d.attempts) } td { (d.last_error.as_deref().unwrap_or("")) }
                    @if can_write { td { @if d.status != DeliveryStatus::Delivered { form method="post" action={ "/notifications/deliveries/" (d.id) "/retry" } {
                        (csrf_field(&user.csrf)) button type="submit" class="link" { "Retry now" }
                    } } } }
                } } }
            } }
        })
        .into_response())
}

#[derive(Deserialize, Default)]
pub struct ChannelForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    kind: String,
    url: Option<String>,
    signing_secret: Option<String>,
    justification: Option<String>,
}

/// `POST /notifications/channels`
pub async fn add(State(app): State<AppState>, user: WebUser, Form(form): Form<ChannelForm>) -> WebResult {
    let body = ChannelInput {
        display_name: form.display_name.clone(),
        kind: Some(form.kind),
        url: given(&form.url),
        signing_secret: given(&form.signing_secret),
        ..ChannelInput::default()
    };
    let outcome = web(create_channel(&app, &user.principal, &body, given(&form.justification)).await)?;
    Ok(after_change(&user, outcome, "/notifications", &format!("Add channel “{}”", form.display_name)))
}

/// `POST /notifications/channels/{id}/test`
pub async fn test(State(app): State<AppState>, user: WebUser, Path(id): Path<String>) -> WebResult {
    web(test_channel(&app, &user.principal, &id).await)?;
    Ok(see_other("/notifications", "A test message is on its way."))
}

/// `POST /notifications/deliveries/{id}/retry`
pub async fn retry(State(app): State<AppState>, user: WebUser, Path(id): Path<String>) -> WebResult {
    web(retry_delivery(&app, &user.principal, &id).await)?;
    Ok(see_other("/notifications", "The message will be sent again now."))
}
