//! The `switchboard` binary: parses the command line, loads configuration, starts logging and
//! hands over to the server library. `accounts` and `tokens` wrap the admin API over HTTP.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use switchboard_server::{Config, DEFAULT_CONFIG};

mod offline;
mod telemetry;

/// mimalloc instead of the system allocator: the hub allocates and frees many small objects
/// per event on a few threads, where glibc's allocator cost about a tenth of the writer's time
/// and let the folds of calls in progress take more memory than they hold. Built without its
/// transparent huge pages (`no_thp`): with them, memory it gave back and took again came back
/// as a fresh 2 MiB page the kernel zeroed whole — a sixth of the request threads' time when
/// ingesting batches.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "A self-hosted hub for telephony events"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub (embedded SQLite in --data-dir, or PostgreSQL with --store).
    Serve(ServeArgs),
    /// Manage accounts through a running hub's admin API.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Manage tokens through a running hub's admin API.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Copy the hub's database into a new file, while the hub runs: a consistent snapshot.
    /// To restore, put the file in an empty data directory as `switchboard.db` and start
    /// `switchboard serve --data-dir` on it.
    Backup(BackupArgs),
    /// Copy an installation's SQLite database into an empty PostgreSQL database, to run the
    /// hub on it (`serve --store`). Stop the hub first.
    Migrate(MigrateArgs),
    /// Print the commented default configuration.
    DefaultConfig,
    /// Decode a file of one dialect's events and print canonical events as NDJSON.
    Decode {
        /// The dialect of the input: phonecom, tel4vn, callable, welljoint, workonflow, canonical.
        #[arg(long)]
        dialect: String,
        /// Time zone of sources that send local times (welljoint).
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// The input file: one JSON object, a JSON array or NDJSON; `-` or nothing for stdin.
        file: Option<PathBuf>,
    },
    /// Convert a file of one dialect's events into another dialect's, as NDJSON.
    Translate {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "UTC")]
        tz: String,
        file: Option<PathBuf>,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080; env SWITCHBOARD_LISTEN].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory for the database [default: ./switchboard-data; env SWITCHBOARD_DATA_DIR].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the state in this PostgreSQL database, shared with other nodes
    /// (postgres://user:password@host:5432/database) instead of SQLite in --data-dir [env
    /// SWITCHBOARD_STORE].
    #[arg(long)]
    store: Option<String>,
    /// A TOML configuration file (see `switchboard default-config`).
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// Allow callbacks on loopback and private networks [env SWITCHBOARD_ALLOW_PRIVATE_TARGETS].
    #[arg(long)]
    allow_private_targets: bool,
}

#[derive(Args)]
struct MigrateArgs {
    /// The data directory of the SQLite installation (its `switchboard.db`).
    #[arg(long, value_name = "DIR")]
    from_sqlite: PathBuf,
    /// The PostgreSQL database to copy it into (postgres://user:password@host:5432/database);
    /// it must be empty. Its schema is made first.
    #[arg(long, value_name = "URL")]
    to: String,
}

#[derive(Args)]
struct BackupArgs {
    /// The hub's data directory [default: as `serve` finds it: ./switchboard-data, env
    /// SWITCHBOARD_DATA_DIR, or the config file's].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A TOML configuration file (see `switchboard default-config`).
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// The file to write; it must not exist.
    #[arg(long)]
    to: PathBuf,
}

#[derive(Args)]
struct AdminArgs {
    /// The hub's base URL.
    #[arg(long, env = "SWITCHBOARD_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The admin token the hub was started with.
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Create an account; prints its id and an api token.
    Create {
        #[command(flatten)]
        admin: AdminArgs,
        /// The account's name.
        #[arg(long)]
        name: String,
        /// The account id (like a Phone.com voip_id); the next free one when omitted.
        #[arg(long)]
        id: Option<i64>,
    },
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Create a token for an account; prints it.
    Create {
        #[command(flatten)]
        admin: AdminArgs,
        /// The account id.
        #[arg(long)]
        account: i64,
        /// `api` (management, query and ingest) or `ingest` (ingest only).
        #[arg(long, default_value = "api")]
        scope: String,
        /// Bind the token to one extension.
        #[arg(long)]
        extension_id: Option<i64>,
    },
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    // One TLS provider for the whole process, before any client exists.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Accounts(AccountsCommand::Create { admin, name, id }) => {
            let mut body = serde_json::json!({ "name": name });
            if let Some(id) = id {
                body["id"] = id.into();
            }
            runtime.block_on(admin_post(&admin, "/admin/accounts", body))
        }
        Command::Tokens(TokensCommand::Create {
            admin,
            account,
            scope,
            extension_id,
        }) => {
            let body = serde_json::json!({ "scope": scope, "extension_id": extension_id });
            runtime.block_on(admin_post(
                &admin,
                &format!("/admin/accounts/{account}/tokens"),
                body,
            ))
        }
        Command::Backup(args) => backup(args),
        Command::Migrate(args) => runtime.block_on(migrate(args)),
        Command::DefaultConfig => {
            print!("{DEFAULT_CONFIG}");
            Ok(())
        }
        Command::Decode { dialect, tz, file } => offline::decode(&dialect, &tz, file.as_deref()),
        Command::Translate { from, to, tz, file } => {
            offline::translate(&from, &to, &tz, file.as_deref())
        }
    }
}

fn backup(args: BackupArgs) -> Result<()> {
    let mut figment = Config::figment(args.config.as_deref());
    if let Some(dir) = &args.data_dir {
        figment = figment.merge(("data_dir", dir));
    }
    let config = Config::from_figment(figment)?;
    if config.store.is_some() {
        bail!(
            "the hub's state is in PostgreSQL (store is set): back it up with PostgreSQL's own tools, e.g. pg_dump --format=custom (README.md § Running on PostgreSQL)"
        );
    }
    let report = switchboard_store::backup(&config.data_dir, &args.to)?;
    println!(
        "backed up {} events, {} calls and {} deliveries still to make ({} bytes) to {}",
        report.events,
        report.calls,
        report.pending_deliveries,
        report.bytes,
        args.to.display()
    );
    Ok(())
}

async fn migrate(args: MigrateArgs) -> Result<()> {
    let target =
        switchboard_store::PgStore::connect(&args.to, switchboard_store::CallOptions::default())
            .await?;
    let mut last = std::time::Instant::now();
    let copied = target
        .import_sqlite(&args.from_sqlite, &mut |table, done, total| {
            // A line as each table starts and ends, and every second between.
            if done == 0 || done == total || last.elapsed() >= std::time::Duration::from_secs(1) {
                eprintln!("{table}: {done} of {total}");
                last = std::time::Instant::now();
            }
        })
        .await?;
    let rows: Vec<String> = copied.iter().map(|(t, n)| format!("{n} {t}")).collect();
    println!(
        "copied {} into {}: {}",
        args.from_sqlite.display(),
        target.place(),
        rows.join(", ")
    );
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<()> {
    let mut figment = Config::figment(args.config.as_deref());
    if let Some(listen) = args.listen {
        figment = figment.merge(("listen", listen.to_string()));
    }
    if let Some(dir) = &args.data_dir {
        figment = figment.merge(("data_dir", dir));
    }
    if let Some(url) = &args.store {
        figment = figment.merge(("store", url));
    }
    if args.allow_private_targets {
        figment = figment.merge(("allow_private_targets", true));
    }
    let config = Config::from_figment(figment)?;
    let telemetry = telemetry::init(
        &config.log_format,
        &config.otlp_endpoint,
        &config.otlp_protocol,
    )?;
    raise_open_file_limit();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // A fixed line on stdout tells scripts (and tests started on port 0) where the hub is.
    println!("switchboard listening on http://{addr}");
    tracing::info!(%addr, data_dir = %config.data_dir.display(), postgres = config.store.is_some(), admin_api = config.admin_token.is_some(), "switchboard started");
    let ran = switchboard_server::run(listener, config, shutdown_signal()).await;
    // Sending the last spans blocks: off the runtime's threads, which carry the requests.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    ran?;
    Ok(())
}

/// Every connection holds a file: the soft limit many systems start with (1 024) let about a
/// thousand idle connections stop the hub answering anyone. It is raised to the hard limit.
fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some() && limit.current < limit.maximum.or(Some(u64::MAX)) {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::info!(
                from = limit.current,
                to = limit.maximum,
                "open-file limit raised to the hard limit"
            ),
            Err(e) => {
                tracing::warn!(error = %e, soft = limit.current, "could not raise the open-file limit")
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

async fn admin_post(admin: &AdminArgs, path: &str, body: serde_json::Value) -> Result<()> {
    let client = reqwest::Client::builder().build()?;
    let url = format!("{}{path}", admin.url.trim_end_matches('/'));
    let response = client
        .post(&url)
        .bearer_auth(&admin.admin_token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{url} answered {status}: {text}");
    }
    let value: serde_json::Value =
        serde_json::from_str(&text).context("the hub answered with something other than JSON")?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}
