//! The dispatcher: sends each webhook's oldest pending delivery when it is due, records
//! every attempt, and backs off on failure (10 s doubling to an hour, with jitter) for
//! 24 hours before marking the delivery failed. Deliveries to one webhook go out in
//! order, one at a time; different webhooks are served side by side, so a receiver
//! that hangs holds back only its own deliveries (each attempt times out after
//! [`ATTEMPT_TIMEOUT`]). It runs beside the server, on its own task: uploads never wait
//! for it.
//!
//! At least once: a delivery is marked sent only after the receiver answered 2xx, so a
//! crash between the two sends it again after the restart. The delivery id in
//! `x-devid-delivery` lets a receiver drop repeats.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use devid_core::time::Micros;
use devid_core::webhook::backoff_micros;
use devid_store::Store;
use devid_store::webhooks::{Attempt, DueDelivery};
use serde_json::json;

use super::{WebhookPolicy, parse_url, resolve, signature};

/// Longest one attempt may take, connection and answer included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the dispatcher sleeps when nothing is due: a change committed by another
/// replica (or by this one) is sent within this.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Due deliveries read from the outbox at a time (each the head of its webhook's queue).
const BATCH: u64 = 64;

/// Starts the dispatcher; it runs until the returned handle is aborted.
///
/// Each attempt runs on a task of its own, and a webhook with an attempt in flight is
/// passed over until it ends: a receiver that hangs (up to the attempt timeout) holds
/// back only its own queue. When an attempt ends the outbox is read again at once, so a
/// webhook with a backlog is sent to back to back.
pub fn spawn(store: Arc<dyn Store>, policy: WebhookPolicy) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let in_flight: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let clients: Arc<Clients> = Arc::default();
        let finished = Arc::new(tokio::sync::Notify::new());
        let mut depth_recorded: Option<std::time::Instant> = None;
        loop {
            let now = devid_store::now_micros();
            match store.due_deliveries(now, BATCH).await {
                Ok(due) => {
                    for delivery in due {
                        if !in_flight.lock().unwrap_or_else(|e| e.into_inner()).insert(delivery.webhook_id) {
                            continue;
                        }
                        let (store, in_flight, finished, clients) =
                            (Arc::clone(&store), Arc::clone(&in_flight), Arc::clone(&finished), Arc::clone(&clients));
                        tokio::spawn(async move {
                            deliver(&*store, &clients, &delivery, policy).await;
                            in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&delivery.webhook_id);
                            finished.notify_one();
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "webhook dispatcher could not read the outbox; retrying"),
            }
            // Counting the backlog reads all of it: at most once a second, not per delivery.
            if depth_recorded.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                record_depth(&store).await;
                depth_recorded = Some(std::time::Instant::now());
            }
            tokio::select! {
                _ = finished.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
    })
}

/// HTTP clients by host and the address it was checked to resolve to: building one
/// loads the system's root certificates (a few milliseconds), and a kept client keeps
/// its connections. Built anew for every attempt, they held a backlog's drain to about
/// 280 deliveries a second.
type Clients = Mutex<HashMap<(String, SocketAddr), reqwest::Client>>;

/// Clients kept at most; past this the cache starts over (webhooks come and go).
const MAX_CLIENTS: usize = 256;

fn client_for(clients: &Clients, host: &str, address: SocketAddr) -> Result<reqwest::Client, String> {
    let mut cache = clients.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(client) = cache.get(&(host.to_string(), address)) {
        return Ok(client.clone());
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(ATTEMPT_TIMEOUT)
        .resolve(host, address)
        .build()
        .map_err(|e| format!("no HTTP client: {e}"))?;
    if cache.len() >= MAX_CLIENTS {
        cache.clear();
    }
    cache.insert((host.to_string(), address), client.clone());
    Ok(client)
}

/// One attempt, recorded.
async fn deliver(store: &dyn Store, clients: &Clients, delivery: &DueDelivery, policy: WebhookPolicy) {
    let attempt = attempt(clients, delivery, policy).await;
    let outcome = if attempt.delivered {
        "delivered"
    } else if attempt.retry_at.is_some() {
        "retrying"
    } else {
        "failed"
    };
    metrics::counter!("devid_webhook_deliveries_total", "outcome" => outcome).increment(1);
    if let Err(e) = store.record_attempt(delivery.id, attempt).await {
        tracing::warn!(error = %e, delivery = delivery.id, "webhook attempt not recorded; it will be sent again");
    }
}

async fn record_depth(store: &Arc<dyn Store>) {
    if let Ok(depth) = store.outbox_depth().await {
        metrics::gauge!("devid_webhook_pending_deliveries").set(depth.pending as f64);
        let age = depth.oldest_pending.map_or(0.0, |at| (devid_store::now_micros() - at).max(0) as f64 / 1e6);
        metrics::gauge!("devid_webhook_oldest_pending_seconds").set(age);
    }
}

/// The JSON body of a delivery.
pub fn body(delivery: &DueDelivery) -> Vec<u8> {
    let value = json!({
        "deliveryId": delivery.id,
        "webhookId": delivery.webhook_id,
        "change": delivery.change,
        "events": format!("/v2/changes/{}", delivery.change.id),
    });
    serde_json::to_vec(&value).unwrap_or_default()
}

/// One attempt, and what to record of it.
async fn attempt(clients: &Clients, delivery: &DueDelivery, policy: WebhookPolicy) -> Attempt {
    let at = devid_store::now_micros();
    let result = send(clients, delivery, policy).await;
    let (delivered, status, error) = match result {
        Ok(status) if (200..300).contains(&status) => (true, Some(status), None),
        Ok(status) => (false, Some(status), Some(format!("the receiver answered {status}"))),
        Err(e) => (false, None, Some(e)),
    };
    let retry_at = (!delivered).then(|| retry_at(at, delivery)).flatten();
    Attempt { at, delivered, status, error, retry_at }
}

/// When to try again after a failed attempt, or `None` once the 24 hours are over.
fn retry_at(now: Micros, delivery: &DueDelivery) -> Option<Micros> {
    let next = now.saturating_add(backoff_micros(delivery.attempts + 1, rand::random()));
    (next <= delivery.expires_at).then_some(next)
}

async fn send(clients: &Clients, delivery: &DueDelivery, policy: WebhookPolicy) -> Result<u16, String> {
    let target = parse_url(&delivery.url)?;
    let address = resolve(&target, policy).await.map_err(|e| e.to_string())?;
    let client = client_for(clients, &target.host, address)?;
    let body = body(delivery);
    let timestamp = devid_store::now_micros() / 1_000_000;
    let response = client
        .post(target.url.clone())
        .header("content-type", "application/json")
        .header("user-agent", "devid-webhooks")
        .header("x-devid-delivery", delivery.id.to_string())
        .header("x-devid-event", delivery.change.kind.as_str())
        .header("x-devid-timestamp", timestamp.to_string())
        .header("x-devid-signature", signature(&delivery.secret, timestamp, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| if e.is_timeout() { "the receiver did not answer in time".to_string() } else { e.to_string() })?;
    Ok(response.status().as_u16())
}
