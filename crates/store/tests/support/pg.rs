//! A PostgreSQL database of its own for a test, on the server `SWITCHBOARD_TEST_POSTGRES`
//! names (default `postgres://postgres:postgres@127.0.0.1:5432/postgres`; `scripts/test`
//! starts one when none runs), dropped when the test ends.

pub fn server_url() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

/// A database made for one test, dropped when the test ends.
pub struct FreshDatabase {
    name: String,
    pub url: String,
}

impl FreshDatabase {
    pub async fn new(test: &str) -> FreshDatabase {
        let server = server_url();
        let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {server} (SWITCHBOARD_TEST_POSTGRES): {e}"));
        tokio::spawn(conn);
        // Unique however many tests of this process make one in the same microsecond.
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = format!(
            "switchboard_test_{test}_{}_{}_{}",
            std::process::id(),
            jiff::Timestamp::now().as_microsecond(),
            MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(&server);
        let url = format!("{base}/{name}");
        FreshDatabase { name, url }
    }
}

impl FreshDatabase {
    /// The database's name.
    #[allow(dead_code)]
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Its own thread and runtime: the test's runtime may be finishing.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&server_url(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            })
        })
        .join();
    }
}
