//! Throughput of the syslog hot paths (plain main, no criterion):
//! `cargo bench --bench syslog`.

use std::hint::black_box;
use std::time::Instant;

use decnet::syslog::*;

fn sample_message() -> SyslogMessage {
    SyslogMessage::builder(Facility::Local0, Severity::Info)
        .timestamp_text("2024-05-01T12:34:56.123456Z")
        .expect("valid timestamp")
        .hostname("decky-web-01")
        .app_name("sshd")
        .procid("2212")
        .msgid("auth")
        .sd_element(
            EVENT_SD_ID,
            [
                ("src", "203.0.113.7"),
                ("sport", "52144"),
                ("user", "root"),
                ("pass", "hunter\"2"),
            ],
        )
        .msg("Failed password for root from 203.0.113.7 port 52144 ssh2 xx")
        .build()
}

struct Row {
    name: &'static str,
    ops: u64,
    bytes: u64,
    secs: f64,
}

fn main() {
    let msg = sample_message();
    let line = msg.to_bytes();
    assert_eq!(parse(&line).as_ref(), Ok(&msg));
    let mut rows = Vec::new();

    // Parse.
    let n = 1_000_000u64;
    let t = Instant::now();
    let mut acc = 0usize;
    for _ in 0..n {
        let m = parse(black_box(&line)).expect("parses");
        acc += m.structured_data.len();
    }
    black_box(acc);
    rows.push(Row {
        name: "parse",
        ops: n,
        bytes: n * line.len() as u64,
        secs: t.elapsed().as_secs_f64(),
    });

    // Format into a reused buffer (what a shipping emitter does).
    let t = Instant::now();
    let mut out = Vec::with_capacity(512);
    for _ in 0..n {
        out.clear();
        black_box(&msg).write_to(&mut out);
        black_box(&out);
    }
    rows.push(Row {
        name: "format (write_to)",
        ops: n,
        bytes: n * line.len() as u64,
        secs: t.elapsed().as_secs_f64(),
    });

    // Build + format with fresh allocations (emitter worst case).
    let t = Instant::now();
    let m2 = n / 4;
    for _ in 0..m2 {
        black_box(sample_message().to_bytes());
    }
    rows.push(Row {
        name: "build+to_bytes",
        ops: m2,
        bytes: m2 * line.len() as u64,
        secs: t.elapsed().as_secs_f64(),
    });

    // Frame decode: 200-byte frames fed in 64 KiB chunks.
    let body = &line[..line.len().min(200)];
    let frames = 1_000_000u64;
    let mut wire = Vec::with_capacity(frames as usize * (body.len() + 4));
    for _ in 0..frames {
        encode_frame(body, &mut wire);
    }
    let t = Instant::now();
    let mut dec = FrameDecoder::new();
    let mut count = 0u64;
    let mut total = 0usize;
    for chunk in wire.chunks(64 * 1024) {
        dec.feed(chunk);
        while let Some(f) = dec.next_frame().expect("valid stream") {
            count += 1;
            total += f.len();
        }
    }
    assert_eq!(count, frames);
    black_box(total);
    rows.push(Row {
        name: "frame decode (64K chunks)",
        ops: count,
        bytes: wire.len() as u64,
        secs: t.elapsed().as_secs_f64(),
    });

    // Frame decode + envelope decode of enveloped lines.
    let mut wire2 = Vec::with_capacity(frames as usize * (body.len() + 32));
    for i in 0..frames {
        ShippedLine {
            file_id: 42,
            offset: i * 201,
            line: body,
        }
        .encode_frame(&mut wire2);
    }
    let t = Instant::now();
    let mut dec = FrameDecoder::new();
    let mut count = 0u64;
    for chunk in wire2.chunks(64 * 1024) {
        dec.feed(chunk);
        while let Some(f) = dec.next_frame().expect("valid stream") {
            if let Ok(Payload::Enveloped(s)) = decode_payload(f) {
                count += 1;
                total += s.line.len();
            }
        }
    }
    assert_eq!(count, frames);
    black_box(total);
    rows.push(Row {
        name: "frame+envelope decode",
        ops: count,
        bytes: wire2.len() as u64,
        secs: t.elapsed().as_secs_f64(),
    });

    println!("message size: {} bytes", line.len());
    println!(
        "{:<28} {:>10} {:>9} {:>14} {:>9}",
        "benchmark", "ops", "secs", "ops/s", "MB/s"
    );
    for r in rows {
        println!(
            "{:<28} {:>10} {:>9.3} {:>14.0} {:>9.1}",
            r.name,
            r.ops,
            r.secs,
            r.ops as f64 / r.secs,
            r.bytes as f64 / r.secs / 1e6
        );
    }
}
