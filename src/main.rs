fn main() -> std::process::ExitCode {
    oxidp::cli::run()
}
