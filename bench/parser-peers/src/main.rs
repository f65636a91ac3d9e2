//! Parse-only time of tree-sitter-bash and brush-parser on the ~10 KB command of
//! `examples/classify_bench.rs` (same generator), to set beside tether's own
//! parser (`classify_bench` prints "parse only").

use std::hint::black_box;
use std::time::Instant;

#[path = "../../long_command.rs"]
mod long_command;
use long_command::long_command;

fn mean_us<F: FnMut()>(iters: u32, mut f: F) -> f64 {
    f();
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(iters)
}

fn main() {
    let iters: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(500);
    let src = long_command(10 * 1024);
    let ts = mean_us(iters, || {
        let mut parser = tree_sitter::Parser::new();
        parser
            .set_language(&tree_sitter_bash::LANGUAGE.into())
            .expect("tree-sitter-bash loads");
        let tree = parser.parse(black_box(&src), None).expect("parses");
        assert!(!tree.root_node().has_error());
        black_box(tree);
    });
    let brush = mean_us(iters, || {
        let tokens = brush_parser::tokenize_str(black_box(&src)).expect("tokenizes");
        let program = brush_parser::parse_tokens(&tokens, &brush_parser::ParserOptions::default())
            .expect("parses");
        black_box(program);
    });
    println!("command: {} bytes, {iters} iterations", src.len());
    println!("tree-sitter-bash 0.25.1 parse: mean {ts:.1} µs");
    println!("brush-parser 0.4.0 tokenize+parse (words left unparsed): mean {brush:.1} µs");
}
