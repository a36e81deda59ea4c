//! `sqlx::migrate!` embeds `../migrations` at compile time; rebuild when a migration is added
//! or changed, or the services would apply an outdated list.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
