//! The load harness runs, at a small scale, so it cannot rot. Speed is measured by hand
//! (BENCHMARKS.md); this only checks that the harness works end to end.

use std::process::Command;

#[tokio::test]
async fn the_harness_drives_its_own_hub_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("results.json");
    for (dialect, batch, listeners) in [("phonecom", "1", "2"), ("tel4vn", "10", "1")] {
        let out = tokio::task::spawn_blocking({
            let json = json.clone();
            move || {
                Command::new(env!("CARGO_BIN_EXE_switchboard-bench"))
                    .args([
                        "--server-bin",
                        env!("CARGO_BIN_EXE_switchboard"),
                        "--calls",
                        "12",
                        "--connections",
                        "4",
                    ])
                    .args([
                        "--dialect",
                        dialect,
                        "--batch",
                        batch,
                        "--listeners",
                        listeners,
                        "--drain",
                        "20",
                    ])
                    .arg("--json")
                    .arg(&json)
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{dialect}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(
            table.contains("ingest events/s") && table.contains("latency p99"),
            "{table}"
        );
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(r["errors"], 0);
        assert!(r["accepted"].as_u64().unwrap() > 12, "{r}");
        assert_eq!(r["deliveries"], r["deliveries_expected"], "{r}");
        assert!(r["server_rss_mib_max"].as_f64().unwrap() > 1.0, "{r}");
        assert!(r["latency_ms_p50"].as_f64().unwrap() > 0.0, "{r}");
    }
}
