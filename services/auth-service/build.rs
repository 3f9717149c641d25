// `sqlx::migrate!` embeds the migrations at compile time, but stable Rust cannot tell
// cargo which files a macro read: without this a new migration alone would not rebuild
// the crate.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
