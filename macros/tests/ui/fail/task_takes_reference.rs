#[multiproc::task]
fn shout(text: &str, times: &u32) -> String {
    text.repeat(*times as usize).to_uppercase()
}

fn main() {}
