//! Scenario 3: verifying the audit chain (what `countersign audit verify` and
//! `GET /api/v1/audit/verify` run, with the audit key) against raw HMAC-SHA-256 over the same
//! bytes, in one run.

use crate::bulk;
use crate::raw::RawPool;
use crate::tenant;
use crate::Target;
use anyhow::{bail, Result};
use countersign_core::audit::{AuditRecord, ChainEntry, ChainVerifier, Evidence};
use countersign_core::Clock;
use countersign_server::SystemClock;
use countersign_store::{Store, VerifyInputs};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct AuditVerifyResult {
    pub backend: String,
    pub entries: u64,
    /// The bytes the chain hashes: each entry's predecessor hash and canonical bytes.
    pub megabytes: f64,
    pub seed_seconds: f64,
    pub verify_seconds: f64,
    pub entries_per_second: f64,
    pub verify_mb_per_second: f64,
    pub raw_hmac_mb_per_second: f64,
    /// verify / raw HMAC-SHA-256 throughput.
    pub ratio: f64,
    /// The chain check alone (hashes, keyed links), on entries already in memory: what
    /// verification costs beyond reading the database.
    pub chain_check_mb_per_second: f64,
    /// chain check alone / raw HMAC-SHA-256 throughput.
    pub chain_check_ratio: f64,
}

pub async fn run(target: &Target, rows: usize) -> Result<AuditVerifyResult> {
    let database = target.fresh_database().await;
    let now = SystemClock.now();
    let store = Store::connect(&database.url, crate::store_options()).await?;
    let tenant = tenant::seed(&store, 10, 2, 0, now).await?;
    store.close().await;

    // The seeded entries, kept to time the chain check and raw SHA-256 over exactly them.
    let mut records: Vec<AuditRecord> = Vec::with_capacity(rows);
    let seeding = Instant::now();
    let pool = RawPool::connect(&database.url, 2).await?;
    let head = pool.head().await?;
    bulk::seed_audit(&pool, &tenant, rows, now, |record| records.push(record.clone())).await?;
    pool.settle().await?;
    pool.close().await;
    let seed_seconds = seeding.elapsed().as_secs_f64();

    let store = Store::connect(&database.url, crate::store_options()).await?;
    let started = Instant::now();
    let keys = crate::audit_keys();
    let report = store.verify_audit(VerifyInputs { keys: Some(&keys), ..VerifyInputs::default() }).await?;
    let verify_seconds = started.elapsed().as_secs_f64();
    store.close().await;
    database.drop_database().await;
    if !report.valid || report.entries_checked < rows as u64 {
        bail!("verification failed on a valid chain: {report:?}");
    }

    // The chain check alone, on the entries in memory.
    let canonical: Vec<Vec<u8>> = records.iter().map(AuditRecord::canonical_bytes).collect();
    let started = Instant::now();
    let evidence = Evidence { keys: Some(&keys), ..Evidence::default() };
    let mut verifier = ChainVerifier::resume(evidence, &head).map_err(|b| anyhow::anyhow!("{b:?}"))?;
    for (record, canonical) in records.iter().zip(&canonical) {
        let entry = ChainEntry {
            seq: record.seq,
            canonical,
            hash: record.hash.as_bytes(),
            link: record.link.as_deref().map(str::as_bytes),
            key_id: record.key_id.as_deref(),
        };
        if let Err(broken) = verifier.push(entry) {
            bail!("the chain check failed on a valid chain: {broken:?}");
        }
    }
    let chain_check_seconds = started.elapsed().as_secs_f64().max(f64::MIN_POSITIVE);

    // The same bytes, entry by entry, through HMAC-SHA-256 alone, keyed once (each MAC starts
    // from a clone of the keyed state, as the verifier's do). The seeded entries' share of the
    // verify time is compared with it, so the tenant's own few entries do not count.
    let mut bytes: Vec<u8> = Vec::new();
    let mut ends: Vec<usize> = Vec::with_capacity(rows);
    for (record, canonical) in records.iter().zip(&canonical) {
        bytes.extend_from_slice(record.prev_hash.as_bytes());
        bytes.extend_from_slice(canonical);
        ends.push(bytes.len());
    }
    drop((records, canonical));
    let keyed = Hmac::<Sha256>::new_from_slice(&[0xb5; 32]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    let mut start = 0;
    let mut fold = 0u8;
    for &end in &ends {
        let mut mac = keyed.clone();
        mac.update(&bytes[start..end]);
        fold ^= mac.finalize().into_bytes()[0];
        start = end;
    }
    let raw_seconds = started.elapsed().as_secs_f64().max(f64::MIN_POSITIVE);
    std::hint::black_box(fold);

    let megabytes = bytes.len() as f64 / 1e6;
    let share = rows as f64 / report.entries_checked as f64;
    let verify_mb_per_second = megabytes / (verify_seconds * share);
    let raw_hmac_mb_per_second = megabytes / raw_seconds;
    let chain_check_mb_per_second = megabytes / chain_check_seconds;
    Ok(AuditVerifyResult {
        backend: target.name().into(),
        entries: report.entries_checked,
        megabytes,
        seed_seconds,
        verify_seconds,
        entries_per_second: report.entries_checked as f64 / verify_seconds,
        verify_mb_per_second,
        raw_hmac_mb_per_second,
        ratio: verify_mb_per_second / raw_hmac_mb_per_second,
        chain_check_mb_per_second,
        chain_check_ratio: chain_check_mb_per_second / raw_hmac_mb_per_second,
    })
}
