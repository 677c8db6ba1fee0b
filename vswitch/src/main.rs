fn main() -> std::process::ExitCode {
    vswitch::cli::main()
}
