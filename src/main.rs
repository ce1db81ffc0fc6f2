//! The `edudns` binary: everything is in the library's [`edudns::cli`].

fn main() -> std::process::ExitCode {
    edudns::cli::main()
}
