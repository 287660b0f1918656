//! `dwcp run`: one sandbox from a file, its output on ours.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use sandbox::{
    Artifact, DirGrant, Engine, Invocation, Limits, MicroVmConfig, MicroVmEngine, Output, Profile,
    Sandbox, SandboxError, Template, Tier, WasmConfig, WasmEngine,
};

use crate::units::{parse_duration, parse_size};

/// Exit status when the sandbox ran past its deadline (as timeout(1)).
const EXIT_TIMEOUT: u8 = 124;
/// Exit status when dwcp itself or the sandbox failed (a trap, a limit, bad
/// input), as opposed to the module exiting with its own status.
const EXIT_FAILED: u8 = 125;

/// Run one sandbox from a `.wasm` or `.wat` file (or, with --tier microvm, a
/// static x86-64 Linux executable) and print its output.
///
/// Without --invoke the module runs as a WASI command (`_start`): stdin,
/// arguments, --env variables and --dir directories are all it is granted; its stdout and
/// stderr become ours and its `proc_exit` status becomes dwcp's. With
/// --invoke NAME the raw entry point NAME is called with the --stdin bytes
/// as input and the bytes it returns are printed.
///
/// With --tier microvm the file is a static Linux program (gcc -static or
/// musl-gcc -static) run in a KVM microVM with no guest kernel: it gets
/// its arguments, --env variables and stdin, and no file system.
///
/// Exit status: the module's own, 124 when it timed out, 125 when it
/// trapped, hit a limit or could not start.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp run examples/hello.wat\n  dwcp run --tier microvm examples/build/microvm/hello.musl\n  echo hi | dwcp run examples/echo.wat --stdin -\n  dwcp run examples/reverse.wat --invoke reverse --stdin note.txt\n  dwcp run app.wasm --env REQUEST_METHOD=GET --timeout 500ms --memory 16MiB"
)]
pub struct RunArgs {
    /// The module: a WebAssembly binary (.wasm) or text (.wat) file.
    file: PathBuf,
    /// Call this raw entry point instead of running `_start`.
    #[arg(long, value_name = "NAME")]
    invoke: Option<String>,
    /// File whose bytes are the module's stdin (or the raw call's input); `-` reads our stdin.
    #[arg(long, value_name = "FILE")]
    stdin: Option<PathBuf>,
    /// Environment variable granted to the module, as KEY=VALUE; repeatable.
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Host directory granted read-only, seen by the module at GUEST (default: HOST as given); repeatable.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dir: Vec<String>,
    /// Host directory granted read-write; repeatable.
    #[arg(long = "dir-rw", value_name = "HOST[::GUEST]")]
    dir_rw: Vec<String>,
    /// Memory limit, e.g. 16MiB [default: 64MiB, or the dense profile's 1MiB slot].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    memory: Option<u64>,
    /// Wall-clock deadline, start function included, e.g. 500ms or 5s.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    timeout: std::time::Duration,
    /// Fuel budget (about one unit per wasm instruction) for a deterministic CPU limit.
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
    /// Cap on each of stdout, stderr and returned bytes; output past it is dropped.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    max_output: u64,
    /// Isolation tier: wasm, or microvm for static Linux programs (ebpf is not implemented yet).
    #[arg(long, default_value = "wasm")]
    tier: Tier,
    /// Memory profile: fast (guard pages, no bounds checks) or dense (small slots).
    #[arg(long, default_value = "fast")]
    profile: Profile,
    /// Where compiled code is cached [default: $DWCP_CACHE_DIR, else ~/.cache/dwcp/code].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every time; read and write no cache.
    #[arg(long)]
    no_cache: bool,
    /// Arguments passed to the module after its name.
    #[arg(last = true)]
    args: Vec<String>,
}

pub fn run(args: RunArgs) -> ExitCode {
    match execute(&args) {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Sandbox(e)) => {
            eprintln!("error: {}: {e}", args.file.display());
            ExitCode::from(match e {
                SandboxError::Timeout { .. } => EXIT_TIMEOUT,
                _ => EXIT_FAILED,
            })
        }
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

enum Failure {
    Sandbox(SandboxError),
    Usage(String),
}

impl From<SandboxError> for Failure {
    fn from(e: SandboxError) -> Self {
        Failure::Sandbox(e)
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DWCP_CACHE_DIR") {
        return Some(dir.into());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("dwcp").join("code"))
}

fn execute(args: &RunArgs) -> Result<u8, Failure> {
    args.tier.available()?;
    let bytes = std::fs::read(&args.file)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", args.file.display())))?;
    let input = match &args.stdin {
        None => Vec::new(),
        Some(p) if p.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .map_err(|e| Failure::Usage(format!("cannot read stdin: {e}")))?;
            buf
        }
        Some(p) => std::fs::read(p)
            .map_err(|e| Failure::Usage(format!("--stdin: cannot read {}: {e}", p.display())))?,
    };
    let env = args
        .env
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    Failure::Usage(format!(
                        "--env `{kv}`: expected KEY=VALUE with a non-empty KEY"
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let dirs: Vec<DirGrant> = args
        .dir
        .iter()
        .map(|d| (d, false))
        .chain(args.dir_rw.iter().map(|d| (d, true)))
        .map(|(spec, writable)| {
            let (host, guest) = spec.split_once("::").unwrap_or((spec, spec));
            if host.is_empty() || guest.is_empty() {
                return Err(Failure::Usage(format!(
                    "--dir `{spec}`: expected HOST or HOST::GUEST with neither empty"
                )));
            }
            Ok(DirGrant {
                host: host.into(),
                guest: guest.to_string(),
                writable,
            })
        })
        .collect::<Result<_, _>>()?;
    let output_bytes = usize::try_from(args.max_output)
        .map_err(|_| Failure::Usage("--max-output is too large".into()))?;

    if args.tier == Tier::MicroVm {
        return run_microvm(args, bytes, &input, &env, &dirs, output_bytes);
    }
    let mut config = WasmConfig::for_profile(args.profile);
    config.max_live = 4;
    config.fuel = args.fuel.is_some();
    config.cache_dir = if args.no_cache {
        None
    } else {
        args.cache_dir.clone().or_else(default_cache_dir)
    };
    let engine = WasmEngine::new(config)?;
    let defaults = Limits::default();
    let limits = Limits {
        memory_bytes: args
            .memory
            .unwrap_or(defaults.memory_bytes.min(engine.config().slot_memory)),
        table_elements: defaults
            .table_elements
            .min(engine.config().slot_table_elements),
        deadline: args.timeout,
        fuel: args.fuel,
        output_bytes,
        ..Limits::default()
    };
    let template = engine.prepare(&Artifact::new(bytes), limits)?;
    let argv = argv(args);

    let invocation_entry = match &args.invoke {
        Some(name) => Some(template.entry(name)?),
        None => None,
    };
    let mut sandbox = engine.start(&template)?;
    let out = match invocation_entry {
        Some(entry) => sandbox.invoke(Invocation::Call {
            entry,
            input: &input,
        })?,
        None => sandbox.invoke(Invocation::Command {
            args: &argv,
            env: &env,
            stdin: &input,
            dirs: &dirs,
        })?,
    };
    Ok(print_output(&out, output_bytes))
}

/// `dwcp run --tier microvm`: the program as a command in a fresh microVM.
fn run_microvm(
    args: &RunArgs,
    bytes: Vec<u8>,
    input: &[u8],
    env: &[(String, String)],
    dirs: &[DirGrant],
    output_bytes: usize,
) -> Result<u8, Failure> {
    if args.invoke.is_some() || args.fuel.is_some() {
        return Err(Failure::Usage(
            "--invoke and --fuel are wasm tier options; a microvm program runs as a command under a deadline".into(),
        ));
    }
    let engine = MicroVmEngine::new(MicroVmConfig { max_live: 4 })?;
    let limits = Limits {
        memory_bytes: args.memory.unwrap_or(Limits::default().memory_bytes),
        deadline: args.timeout,
        output_bytes,
        ..Limits::default()
    };
    let template = engine.prepare(&Artifact::new(bytes), limits)?;
    let argv = argv(args);
    let mut vm = engine.start(&template)?;
    let out = vm.invoke(Invocation::Command {
        args: &argv,
        env,
        stdin: input,
        dirs,
    })?;
    Ok(print_output(&out, output_bytes))
}

/// The program's arguments: its file name, then what follows `--`.
fn argv(args: &RunArgs) -> Vec<String> {
    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "module".into());
    std::iter::once(name)
        .chain(args.args.iter().cloned())
        .collect()
}

/// Writes the sandbox's output on ours; returns the exit status to use.
fn print_output(out: &Output, output_bytes: usize) -> u8 {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&out.returned);
    let _ = stdout.write_all(&out.stdout);
    let _ = stdout.flush();
    let _ = std::io::stderr().write_all(&out.stderr);
    if out.truncated {
        eprintln!(
            "warning: output went past the {} byte cap and was cut (raise it with --max-output)",
            output_bytes
        );
    }
    if let Some(fuel) = out.fuel_used {
        eprintln!("fuel used: {fuel}");
    }
    out.exit_code.clamp(0, 255) as u8
}
