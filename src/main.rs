//! The `tether` binary: `tether` / `tether lsp` serve LSP on stdio,
//! `tether exec` runs one headless turn, `tether sessions` and `tether rules`
//! inspect the store, `tether doctor` checks the setup.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tether",
    version,
    about = "A coding agent that lives inside the editor (LSP over stdio)"
)]
struct Cli {
    /// Accepted and ignored (VS Code's client appends it).
    #[arg(long, global = true, hide = true)]
    stdio: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the Language Server Protocol on stdin/stdout (the default).
    Lsp,
    /// Run one turn without an editor: reply on stdout, events on stderr.
    Exec {
        /// The prompt.
        prompt: String,
        /// Continue this session.
        #[arg(long)]
        session: Option<String>,
        /// Run what would ask for approval (forbidden commands still never run).
        #[arg(long, conflicts_with = "deny")]
        approve: bool,
        /// Deny what would ask for approval (the default).
        #[arg(long)]
        deny: bool,
        /// Workspace root (default: the current directory).
        #[arg(long)]
        root: Option<std::path::PathBuf>,
    },
    /// List, show, search, delete or export stored sessions.
    Sessions {
        #[command(subcommand)]
        action: tether::exec::SessionsCmd,
    },
    /// List or remove "Always allow" rules.
    Rules {
        #[command(subcommand)]
        action: tether::exec::RulesCmd,
    },
    /// Check the setup: config sources, model endpoint and key, data dir,
    /// and how to hook Tether into the editors on PATH.
    Doctor {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Workspace root whose `.tether/config.toml` to include (default: the current directory).
        #[arg(long)]
        root: Option<std::path::PathBuf>,
    },
    /// Internal: lead a command's process group (see tools::supervise).
    #[command(hide = true)]
    Supervise {
        #[arg(long)]
        parent: i32,
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Cmd::Supervise { parent, argv }) = &cli.command {
        // No runtime, no threads: the supervisor must stay tiny.
        return tether::tools::supervise::run(*parent, argv);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tether")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return tether::term::CliError::failed(format!("cannot start the async runtime: {e}"))
                .report();
        }
    };
    // The commands return their failure; it is printed here, once (a closed
    // stdout, as in `tether rules list | head -1`, is success).
    let result = match cli.command.unwrap_or(Cmd::Lsp) {
        Cmd::Lsp => Ok(runtime.block_on(tether::lsp::serve_stdio())),
        Cmd::Exec {
            prompt,
            session,
            approve,
            deny: _,
            root,
        } => runtime.block_on(tether::exec::run(prompt, session, approve, root)),
        Cmd::Sessions { action } => runtime.block_on(tether::exec::sessions(action)),
        Cmd::Rules { action } => runtime.block_on(tether::exec::rules(action)),
        Cmd::Doctor { json, root } => runtime.block_on(tether::doctor::run(json, root)),
        Cmd::Supervise { .. } => Ok(ExitCode::SUCCESS),
    };
    let code = result.unwrap_or_else(tether::term::CliError::report);
    // Do not wait for blocking tasks (a stuck read must not hold the exit).
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}
