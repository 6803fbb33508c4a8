//! The concurrent prime sieve: a generator of 2, 3, 4, … feeds a chain of filter
//! microthreads, each dropping the multiples of its prime. Prints the first N primes
//! (first argument, default 100).

use weft_guest::{Receiver, Sender, channel, generate};

fn numbers(tx: Sender<u64>) {
    for n in 2.. {
        if tx.send(n).is_err() {
            return; // the sieve has all it needs
        }
    }
}

fn filter((prime, input, output): (u64, Receiver<u64>, Sender<u64>)) {
    for n in input {
        if n % prime != 0 && output.send(n).is_err() {
            return;
        }
    }
}

fn main() {
    let n: usize = std::env::args().nth(1).map_or(100, |a| a.parse().expect("N"));
    let mut input = generate(numbers).expect("room for the generator");
    let mut primes = Vec::with_capacity(n);
    for _ in 0..n {
        let prime = input.recv().expect("the sieve ended early");
        primes.push(prime);
        let (tx, rx) = channel(0);
        let _ = weft_guest::spawn(filter, (prime, input, tx));
        input = rx;
    }
    drop(input); // the chain unwinds: every filter sees its output closed
    let text: Vec<String> = primes.iter().map(u64::to_string).collect();
    println!("{}", text.join(" "));
}
