fn main() -> std::process::ExitCode {
    chatbot::cli::main()
}
