fn main() {
    let offset = 10u64;
    let scale = 3u64;
    let _add = multiproc::lambda!(|x: u64| x * scale + offset);
}
