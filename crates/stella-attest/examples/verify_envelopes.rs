//! Benchmark entry point for bench/verify-envelopes.sh (not part of the CLI).
//!
//! `verify_envelopes gen <dir> <count> <payload-bytes>`: writes an ECDSA P-256
//! key (`key.pub`), an image digest (`subject.txt`) and `<count>` signed
//! sigstore bundles (`att-NNNNN.json`, predicate padded to about
//! `<payload-bytes>` of statement) into `<dir>`.
//!
//! `verify_envelopes verify <dir> <threads>`: reads every bundle into memory,
//! then times full verification (parse, signature over PAE, statement
//! parse, subject match) of all of them on 1 thread and on `<threads>`
//! threads (std::thread::scope). Prints `key=value` lines.

use std::path::Path;
use std::time::Instant;

use stella_attest::bundle::BUNDLE_V03;
use stella_attest::verify::{TrustPolicy, verify_attestation};
use stella_crypto::{KeyKind, PrivateKey, PublicKey};
use stella_types::Digest;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn generate(dir: &Path, count: usize, payload: usize) -> Res<()> {
    std::fs::create_dir_all(dir)?;
    let key = PrivateKey::generate(KeyKind::EcdsaP256)?;
    std::fs::write(dir.join("key.pub"), key.public_key().to_pem())?;
    let subject = Digest::sha256_of(b"benchmark image manifest");
    std::fs::write(dir.join("subject.txt"), subject.to_string())?;
    let mut sizes = 0usize;
    for i in 0..count {
        // Pad the predicate so the statement is about `payload` bytes.
        let pad = "x".repeat(payload.saturating_sub(330));
        let predicate = serde_json::json!({"buildDefinition": {"buildType": "https://example.com/bench", "externalParameters": {"i": i, "pad": pad}}, "runDetails": {}});
        let s = stella_attest::sign::attest(
            "registry.example/app",
            &subject,
            "https://slsa.dev/provenance/v1",
            predicate,
            &key,
            &[],
        )?;
        sizes += s.statement.to_canonical_json()?.len();
        std::fs::write(dir.join(format!("att-{i:05}.json")), &s.bundle_json)?;
    }
    println!("generated={count}");
    println!("mean_payload_bytes={}", sizes / count.max(1));
    Ok(())
}

fn verify_all(items: &[Vec<u8>], subject: &Digest, policy: &TrustPolicy) -> usize {
    items
        .iter()
        .filter(|b| verify_attestation(b, BUNDLE_V03, subject, policy).verified)
        .count()
}

fn verify(dir: &Path, threads: usize) -> Res<()> {
    let key = PublicKey::from_pem(&std::fs::read_to_string(dir.join("key.pub"))?)?;
    let subject = Digest::parse(std::fs::read_to_string(dir.join("subject.txt"))?.trim())?;
    let policy = TrustPolicy {
        keys: vec![key],
        ..Default::default()
    };
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("att-"))
        })
        .collect();
    names.sort();
    let items: Vec<Vec<u8>> = names.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let n = items.len();
    // Warm-up.
    verify_all(&items[..n.min(200)], &subject, &policy);

    let t = Instant::now();
    let ok1 = verify_all(&items, &subject, &policy);
    let single = t.elapsed().as_secs_f64();

    let threads = threads.max(1);
    let chunk = n.div_ceil(threads).max(1);
    let t = Instant::now();
    let ok_n: usize = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(|| verify_all(c, &subject, &policy)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let multi = t.elapsed().as_secs_f64();
    println!("envelopes={n}");
    println!("verified_1_thread={ok1}");
    println!("verified_{threads}_threads={ok_n}");
    println!("seconds_1_thread={single:.3}");
    println!("seconds_{threads}_threads={multi:.3}");
    println!("per_sec_1_thread={:.0}", n as f64 / single);
    println!("per_sec_{threads}_threads={:.0}", n as f64 / multi);
    println!("speedup={:.2}", single / multi);
    if ok1 != n || ok_n != n {
        return Err(format!("only {ok1}/{ok_n} of {n} verified").into());
    }
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen") if args.len() == 5 => {
            generate(Path::new(&args[2]), args[3].parse()?, args[4].parse()?)
        }
        Some("verify") if args.len() == 4 => verify(Path::new(&args[2]), args[3].parse()?),
        _ => Err(
            "usage: verify_envelopes gen <dir> <count> <payload-bytes> | verify <dir> <threads>"
                .into(),
        ),
    }
}
