//! `lxcri`: the administrator's command line (`lxcri image validate|inspect|build`).
fn main() {
    std::process::exit(lxcri::cli::main());
}
