fn main() -> std::process::ExitCode {
    updraft::cli::main()
}
