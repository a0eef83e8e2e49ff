//! The `tokengate` binary: make created files private (umask), parse the command line, start
//! logging, run the command.

use clap::Parser;

/// mimalloc instead of glibc's allocator: the packet path allocates and frees small objects on
/// several threads (cached user copies, reply buffers, audit rows), and glibc's free lists
/// (`malloc_consolidate`, `unlink_chunk`) were about 14 % of the CPU at peak load (bench/README.md,
/// session 5).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    private_files();
    let cli = tokengate::cli::Cli::parse();
    tokengate::cli::init_tracing(cli.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokengate: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(tokengate::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokengate: {}", error_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Makes every file and directory this process creates private to its user, before it creates
/// any (and before the runtime's threads start: the mask is per process). The data directory
/// (0700), the SQLite database with its `-wal` and `-shm` files, the master key, audit exports,
/// emergency-code exports and `populate --secrets-out` files (0600) must not be readable by other
/// local users whatever umask the service was started with; group and other bits are added to
/// the mask, so an operator's stricter mask stays. (`libc::umask` would need `unsafe`, which the
/// crate denies; rustix wraps the same system call safely.)
fn private_files() {
    use rustix::fs::Mode;
    let private = Mode::from_raw_mode(0o077);
    let previous = rustix::process::umask(private);
    rustix::process::umask(previous | private);
}

/// The error and its causes on one line, skipping causes whose text an outer message already
/// includes (our error types print their source in their own message).
fn error_chain(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}
