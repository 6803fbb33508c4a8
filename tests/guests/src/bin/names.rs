//! Identity and yielding: `current()` in main and in named and unnamed children.

fn who(_: ()) -> (u64, Option<String>) {
    let me = weft_guest::current();
    (me.id, me.name)
}

fn main() {
    let me = weft_guest::current();
    println!("main: id {} name {:?}", me.id, me.name);
    let a = weft_guest::Builder::new().name("alice").spawn(who, ()).unwrap();
    let (id, name) = a.join().unwrap();
    println!("child: id {id} name {name:?}");
    let (id, name) = weft_guest::spawn(who, ()).join().unwrap();
    println!("child: id {id} name {name:?}");
    for _ in 0..100 {
        weft_guest::yield_now();
    }
    println!("yielded 100 times");
}
