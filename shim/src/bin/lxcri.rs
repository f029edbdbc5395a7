//! `lxcri`: the administrator's command line (`lxcri image ...`, `lxcri layers ...`).
fn main() {
    std::process::exit(lxcri::cli::main());
}
