fn main() {
    std::process::exit(xdpvs_main());
}

fn xdpvs_main() -> i32 {
    eprintln!("xdpvs: see --help");
    2
}
