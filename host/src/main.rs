//! The `recotem` command. All behaviour lives in the library.

fn main() -> std::process::ExitCode {
    recotem::cli::main()
}
