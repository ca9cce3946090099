//! The command line. Flags are defined here with clap (their docs are the
//! `--help` text); each subcommand lives in its own file and receives
//! already-parsed arguments.

mod inspect;
mod keygen;
mod plugins;
mod schema;
mod serve;
mod train;
mod validate;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::Error;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (or lock contended without --fail-on-busy)
  1  unexpected internal error
  2  recipe error (schema, env expansion, path rules) or bad usage
  3  data source error (missing file or column, malformed data, plugin failure)
  4  training error (see the `code` field of the train_error event)
  5  artifact error (corrupt, tampered, unknown kid, over a size cap)
  6  per-recipe lock held by another process (with --fail-on-busy)
  7  HTTP(S) fetch error
  8  configuration error (signing keys missing or malformed, unsafe flag misuse)";

/// Recipe-driven recommender training and serving; every data source and
/// trainer runs as a sandboxed WebAssembly component.
#[derive(Debug, Parser)]
#[command(name = "recotem", version, about, after_help = EXIT_CODES, disable_help_subcommand = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model from a recipe and write a signed artifact.
    ///
    /// Reads interactions through the recipe's data-source component, cleans
    /// and splits them, searches hyper-parameters across the listed trainer
    /// components (each trial in a fresh sandbox), refits the best on all the
    /// data and writes an HMAC-signed artifact to `output.path`.
    ///
    /// Needs RECOTEM_SIGNING_KEYS=kid:hex64[,...] (the first key signs); see
    /// `recotem keygen`. Progress is logged as JSON events on stderr
    /// (RECOTEM_LOG_FORMAT=json|console|auto); the artifact path is printed on
    /// stdout. Every failure emits exactly one `train_error` event.
    #[command(after_help = EXIT_CODES)]
    Train(TrainArgs),

    /// Verify an artifact's signature and print its header.
    ///
    /// Checks the structure, then the HMAC with RECOTEM_SIGNING_KEYS, without
    /// decoding the payload: safe on suspect files. Follows an append_sha
    /// pointer. Prints `HMAC: OK  (kid='<kid>')` and the header JSON.
    #[command(after_help = EXIT_CODES)]
    Inspect(InspectArgs),

    /// Generate a signing key or an API key.
    ///
    /// Prints `kid=`, `plaintext=`, then `fingerprint=` (signing) or
    /// `hash=sha256:<hex>` (api), and the `env_entry=` line to export.
    #[command(after_help = EXIT_CODES)]
    Keygen(KeygenArgs),

    /// Check a recipe (or every recipe of a directory) without training.
    ///
    /// Loads the recipe exactly as `train` does (YAML, ${RECOTEM_RECIPE_*}
    /// expansion from the environment, the recipe schema, algorithm names,
    /// path rules), validates the `source` block against the JSON Schema of
    /// its component, then runs the component's probe on the same input a
    /// real run would open (read-only; the data is not read in full).
    /// Prints `Recipe '<name>': schema OK`, `DataSource: probe OK (<type>)`
    /// for each recipe, then `Validation passed.`. A directory is loaded
    /// strictly: its direct *.yaml children, unique names.
    #[command(after_help = EXIT_CODES)]
    Validate(ValidateArgs),

    /// Print the JSON Schema (draft 2020-12) of recipes.
    ///
    /// `source` is the union (oneOf, discriminated by `type`) of the config
    /// schemas published by every registered data-source component:
    /// the built-ins and those of --plugin-dir / RECOTEM_PLUGIN_DIR.
    #[command(after_help = EXIT_CODES)]
    Schema(SchemaArgs),

    /// Show what each plugin component is and what it may do.
    ///
    /// For every component (built-ins and --plugin-dir / RECOTEM_PLUGIN_DIR):
    /// name, kind, version, sha256, WIT world and version, imports (its
    /// capability surface), declared needs, what the policy
    /// (RECOTEM_PLUGIN_POLICY) grants, limits and config schema. `audit`
    /// exits 3 (4 when only trainers are at fault) when any component is
    /// refused, e.g. because it asks for more than the policy grants.
    #[command(after_help = EXIT_CODES)]
    Plugins(PluginsArgs),

    /// Serve recommendations over HTTP from every recipe of a directory.
    ///
    /// Loads the recipes of DIR (a broken one is registered as not loaded),
    /// verifies each artifact at its `output.path` with RECOTEM_SIGNING_KEYS
    /// (following append_sha pointers) and answers the /v1 API:
    /// `POST /v1/recipes/<name>:recommend` {"user_id": "u1", "limit": 10},
    /// `:recommend-related` {"seed_items": [...]}, their `batch-` forms,
    /// `GET /v1/recipes[/<name>]`, `/v1/health` (no key; 200 or 503) and
    /// `/v1/health/details`, `/v1/metrics` (RECOTEM_METRICS_ENABLED=1).
    ///
    /// Clients send `X-API-Key`; the server checks it against
    /// RECOTEM_API_KEYS=kid:sha256:<hex> (`recotem keygen --type api`).
    /// Without keys it binds 127.0.0.1 only. Artifacts are re-checked every
    /// RECOTEM_WATCH_INTERVAL seconds (default 5) and swapped in without a
    /// restart; a bad one is refused and the old model keeps serving.
    /// SIGTERM/SIGINT drain in-flight requests for up to
    /// RECOTEM_DRAIN_SECONDS (default 30), then exit 0. Every variable is
    /// listed in docs/cli.md; the API in docs/http-api.md.
    ///
    /// Example:
    ///   RECOTEM_SIGNING_KEYS=... recotem serve --recipes recipes/ --port 8080
    ///   curl -s localhost:8080/v1/health
    #[command(after_help = EXIT_CODES)]
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Directory of recipe *.yaml files (direct children).
    #[arg(long, value_name = "DIR")]
    recipes: PathBuf,

    /// Address to bind (default RECOTEM_HOST, else 127.0.0.1). Forced to
    /// 127.0.0.1 when no API keys are configured.
    #[arg(short = 'H', long, value_name = "HOST")]
    host: Option<String>,

    /// Port (default RECOTEM_PORT, else 8080); 0 picks a free port, shown
    /// in the `serve_listening` event.
    #[arg(short, long, value_name = "PORT")]
    port: Option<u16>,

    /// Development only: no API key required, any bind address. Requires
    /// RECOTEM_ENV=development, dev or test (exit 8 otherwise).
    #[arg(long)]
    insecure_no_auth: bool,

    /// Directory of third-party `*.wasm` components (source types that
    /// recipes name).
    #[arg(long, env = "RECOTEM_PLUGIN_DIR", value_name = "DIR")]
    plugin_dir: Option<PathBuf>,

    #[command(flatten)]
    dev: DevFlags,
}

#[derive(Debug, clap::Args)]
struct PluginsArgs {
    #[command(subcommand)]
    action: PluginsAction,

    /// Directory of third-party `*.wasm` components (sources, trainers).
    #[arg(long, env = "RECOTEM_PLUGIN_DIR", value_name = "DIR", global = true, value_parser = PathArg)]
    plugin_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum PluginsAction {
    /// One line per component: name, kind, version, sha256 prefix, status, origin.
    List {
        /// Print the full JSON document instead (same as `audit --json`).
        #[arg(long)]
        json: bool,
    },
    /// Everything known about one component, by source type, trainer name
    /// or path to a `.wasm` file.
    Inspect {
        /// Source type, trainer name (or alias), or a component file.
        target: String,
        /// Print JSON (one component object of the audit document).
        #[arg(long)]
        json: bool,
    },
    /// Install a component file into the plugin directory: audit it with
    /// the current policy, precompile it into the cache (so the first
    /// `train` does not pay the compile) and print its sha256 and the
    /// policy lines that pin it. A refused component is not installed.
    Install {
        /// The component file (`.wasm`).
        #[arg(value_parser = PathArg)]
        file: PathBuf,
    },
    /// Every component in full; non-zero exit when any is refused.
    Audit {
        /// Print the JSON document (stable, see docs/security.md).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct TrainArgs {
    /// The recipe YAML file (a path or a file:// URL).
    #[arg(value_parser = PathArg)]
    recipe: PathBuf,

    /// Run identifier for events and the artifact header
    /// ([A-Za-z0-9_.-]{1,64}; default: 12 random hex digits).
    #[arg(long)]
    run_id: Option<String>,

    /// Suppress per-trial `trial_done` events and the progress bar
    /// (summaries are still logged).
    #[arg(short, long)]
    quiet: bool,

    /// Add each trial's hyper-parameters to its `trial_done` event, and log
    /// debug events.
    #[arg(short, long)]
    verbose: bool,

    /// Do not take the per-recipe lock (`<output.path>.lock`) at all.
    #[arg(long)]
    no_lock: bool,

    /// When another process holds the recipe's lock, exit 6 instead of
    /// skipping the run with exit 0 (and `recipe_lock_contended_skipping`).
    #[arg(long)]
    fail_on_busy: bool,

    /// How long to wait for a held lock: 0 tries once (the default), -1
    /// waits forever, a positive number of seconds polls until then. Any
    /// other negative value exits 8.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0, allow_negative_numbers = true)]
    lock_timeout: f64,

    /// Directory of third-party `*.wasm` components (sources, trainers).
    #[arg(long, env = "RECOTEM_PLUGIN_DIR", value_name = "DIR", value_parser = PathArg)]
    plugin_dir: Option<PathBuf>,

    /// Value for ${KEY} expansion in the recipe, overriding the process
    /// environment (repeatable). KEY must be RECOTEM_RECIPE_* and not look
    /// like a secret; it is checked only when the recipe references it.
    /// A malformed argument (no `=`) exits 2.
    #[arg(long = "env-var", value_name = "KEY=VALUE")]
    env_var: Vec<String>,

    #[command(flatten)]
    dev: DevFlags,
}

#[derive(Debug, clap::Args)]
struct ValidateArgs {
    /// A recipe YAML file, or a directory of them (a path or a file:// URL).
    #[arg(value_parser = PathArg)]
    target: PathBuf,

    /// Directory of third-party `*.wasm` components (sources, trainers).
    #[arg(long, env = "RECOTEM_PLUGIN_DIR", value_name = "DIR", value_parser = PathArg)]
    plugin_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct SchemaArgs {
    /// Directory of third-party `*.wasm` components whose source schemas
    /// join the union.
    #[arg(long, env = "RECOTEM_PLUGIN_DIR", value_name = "DIR", value_parser = PathArg)]
    plugin_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// Artifact file, or an append_sha pointer file: a local path or a
    /// file:// URL.
    artifact: OsString,

    /// Development only: when RECOTEM_SIGNING_KEYS is not set, verify with
    /// the all-zero `dev` signing key. Requires RECOTEM_ENV=development
    /// (exit 8 otherwise). Inspect never decodes the payload, so it needs no
    /// --i-understand-this-loads-arbitrary-code.
    #[arg(long)]
    dev_allow_unsigned: bool,

    /// Accepted for symmetry with `train`; inspect does not need it.
    #[arg(long, hide = true)]
    i_understand_this_loads_arbitrary_code: bool,
}

#[derive(Debug, clap::Args)]
struct DevFlags {
    /// Development only: use the all-zero `dev` signing key. Requires
    /// RECOTEM_ENV=development and --i-understand-this-loads-arbitrary-code
    /// (exit 8 otherwise).
    #[arg(long)]
    dev_allow_unsigned: bool,

    /// Confirms --dev-allow-unsigned.
    #[arg(long)]
    i_understand_this_loads_arbitrary_code: bool,
}

#[derive(Debug, clap::Args)]
struct KeygenArgs {
    /// What to generate: `signing` (artifact HMAC key) or `api` (serve API key).
    #[arg(long = "type", default_value = "signing", value_name = "TYPE")]
    kind: String,

    /// Key id (default: 8 random hex digits).
    #[arg(long)]
    kid: Option<String>,
}

impl DevFlags {
    /// Validate the development-mode gate of a command that may load code
    /// (train; serve next, CLI-10/CLI-14): `Ok(true)` when the dev key must
    /// be used.
    fn check(&self) -> Result<bool, Error> {
        if !self.dev_allow_unsigned {
            return Ok(false);
        }
        if !self.i_understand_this_loads_arbitrary_code {
            return Err(Error::config(
                "--dev-allow-unsigned needs --i-understand-this-loads-arbitrary-code as well",
            ));
        }
        require_development("--dev-allow-unsigned")?;
        Ok(true)
    }
}

/// The development-only gate every dev flag shares: `RECOTEM_ENV` must be
/// `development` (trimmed, any case), else exit 8 naming `flag`.
fn require_development(flag: &str) -> Result<(), Error> {
    if crate::settings::get().env != "development" {
        return Err(Error::config(format!("{flag} is only allowed with RECOTEM_ENV=development")));
    }
    Ok(())
}

/// Parses a path argument (or its environment variable) with
/// [`crate::recipe::paths::path_arg`], so a `file://` URL works wherever a
/// path does. It never fails, so clap never echoes the value.
#[derive(Debug, Clone, Copy)]
struct PathArg;

impl clap::builder::TypedValueParser for PathArg {
    type Value = PathBuf;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<PathBuf, clap::Error> {
        Ok(crate::recipe::paths::path_arg(value))
    }
}

/// Parse the arguments, run the command, return its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Usage errors are recipe-class errors (exit 2); help/version exit 0.
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    // Raw environment → validated settings, once: the log format first (so
    // the settings' own events have a log), then everything else.
    let verbosity = match &cli.command {
        Command::Train(args) if args.verbose => crate::events::Verbosity::Verbose,
        _ => crate::events::Verbosity::Normal,
    };
    crate::events::init(crate::settings::log_format_from_env().resolve(), verbosity);
    let settings = crate::settings::init();
    // A panic is reported as one event (never a raw backtrace on stderr,
    // which would break JSON log parsing); `train` adds its train_error.
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        crate::events::Event::error("internal_panic").field("location", location).emit();
    }));
    if settings.log_format_unknown {
        crate::events::Event::warn("env_var_unparseable").field("name", "RECOTEM_LOG_FORMAT").field("default", "auto").emit();
    }
    let code = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Plugins(args) => plugins::run(args),
        Command::Serve(args) => serve::run(args),
    };
    ExitCode::from(code)
}

/// The wasm runtime, every registered component (built-ins and
/// `plugin_dir`), and the catalog recipes are checked against.
fn components(
    plugin_dir: Option<&Path>,
) -> Result<(crate::plugin::engine::Runtime, crate::plugin::Registry, crate::recipe::Catalog), Error> {
    let runtime = crate::plugin::engine::Runtime::new()?;
    let registry = crate::plugin::Registry::load(&runtime, plugin_dir)?;
    let catalog = registry.catalog();
    Ok((runtime, registry, catalog))
}

/// Print a command's result on stdout, or report its failure (see [`fail`]);
/// return the exit code. (`train` has its own `train_error` event.)
fn report(command: &'static str, result: Result<String, Error>) -> u8 {
    match result {
        Ok(text) => {
            println!("{text}");
            0
        }
        Err(error) => fail(command, &error),
    }
}

/// Report a failure of a command other than `train` as one
/// `command_failed` event on stderr and return its exit code.
fn fail(command: &'static str, error: &Error) -> u8 {
    crate::events::Event::error("command_failed")
        .field("command", command)
        .field("code", error.code())
        .field("exit_code", error.exit_code())
        .field("error", error.to_string())
        .emit();
    error.exit_code()
}
