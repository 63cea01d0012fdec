//! A small key-value server speaking RESP (the Redis protocol), written the way a coring user
//! would: `cargo run --release --example kv -- [ADDR]` (default 127.0.0.1:6379), then
//! `redis-cli -p 6379 set greeting hello` or `redis-benchmark -p 6379 -t ping,set,get,incr -q`.
//!
//! Commands: PING [msg], ECHO msg, GET key, SET key value, DEL key..., EXISTS key...,
//! INCR key, DBSIZE, FLUSHALL, QUIT; CONFIG GET and COMMAND answer with empty data
//! (tools ask for them). Requests are RESP arrays of bulk strings or inline lines (`PING\r\n`).
//!
//! One thread, one task per connection, the map in an `Rc<RefCell<_>>`. Pipelining: each
//! read may bring many requests; every complete one is answered into one output buffer, sent
//! with one write. A request split across reads waits in the input buffer for the rest.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::rc::Rc;

use coring::net::{TcpListener, TcpStream};

/// The store every connection shares.
pub type Db = Rc<RefCell<HashMap<Vec<u8>, Vec<u8>>>>;

/// The longest request accepted (a bulk string, an inline line, an array's count).
const MAX_REQUEST: usize = 64 << 20;
/// How much one read asks for.
const READ_SIZE: usize = 16 << 10;

/// Serves every connection `listener` accepts, one task each, on one shared map.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    let db = Db::default();
    loop {
        let (stream, _peer) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let db = db.clone();
        coring::spawn(async move {
            if let Err(e) = connection(stream, db).await {
                if e.kind() != io::ErrorKind::ConnectionReset {
                    eprintln!("kv: connection: {e}");
                }
            }
        });
    }
}

/// One client: read, answer every complete request, write, repeat.
async fn connection(stream: TcpStream, db: Db) -> io::Result<()> {
    // `input[start..]` holds bytes received but not yet parsed.
    let mut input: Vec<u8> = Vec::with_capacity(READ_SIZE);
    let mut start = 0;
    let mut output: Vec<u8> = Vec::with_capacity(READ_SIZE);
    loop {
        // Make room at the end for one more read, dropping what was parsed.
        if start > 0 {
            input.drain(..start);
            start = 0;
        }
        input.reserve(READ_SIZE);
        let filled = input.len();
        let (res, slice) = stream
            .read(coring::buf::IoBuf::slice(input, filled..))
            .await;
        input = slice.into_inner();
        if res? == 0 {
            return Ok(());
        }
        let mut quit = false;
        loop {
            match parse(&input[start..]) {
                Ok(Some((args, used))) => {
                    start += used;
                    quit = execute(&args, &db, &mut output);
                    if quit {
                        break;
                    }
                }
                Ok(None) => break, // the rest of the request is still on its way
                Err(msg) => {
                    output.extend_from_slice(format!("-ERR Protocol error: {msg}\r\n").as_bytes());
                    quit = true;
                    break;
                }
            }
        }
        if !output.is_empty() {
            let (res, buf) = stream.write_all(output).await;
            output = buf;
            output.clear();
            res?;
        }
        if quit {
            return Ok(());
        }
    }
}

/// One request's arguments, borrowed from the input.
type Args<'a> = Vec<&'a [u8]>;

/// Parses one request from the front of `buf`: its arguments and how many bytes it used, or
/// `None` if it is not complete yet.
fn parse(buf: &[u8]) -> Result<Option<(Args<'_>, usize)>, &'static str> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] != b'*' {
        return parse_inline(buf);
    }
    let Some((count, mut at)) = line(buf, 1)? else {
        return Ok(None);
    };
    let count = number(count)?;
    if count > MAX_REQUEST as i64 {
        return Err("too many arguments");
    }
    let mut args = Vec::with_capacity(count.max(0) as usize);
    for _ in 0..count.max(0) {
        match buf.get(at) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(_) => return Err("expected '$'"),
        }
        let Some((len, next)) = line(buf, at + 1)? else {
            return Ok(None);
        };
        let len = number(len)?;
        if !(0..=MAX_REQUEST as i64).contains(&len) {
            return Err("invalid bulk length");
        }
        let end = next + len as usize;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err("bulk string not followed by CRLF");
        }
        args.push(&buf[next..end]);
        at = end + 2;
    }
    Ok(Some((args, at)))
}

/// An inline request: words separated by spaces, ended by `\n` (or `\r\n`).
fn parse_inline(buf: &[u8]) -> Result<Option<(Args<'_>, usize)>, &'static str> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > MAX_REQUEST {
            Err("inline request too long")
        } else {
            Ok(None)
        };
    };
    let text = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    let args = text
        .split(|&b| b == b' ')
        .filter(|word| !word.is_empty())
        .collect();
    Ok(Some((args, nl + 1)))
}

/// The line starting at `from`, without its CRLF, and the index after the CRLF.
fn line(buf: &[u8], from: usize) -> Result<Option<(&[u8], usize)>, &'static str> {
    let rest = buf.get(from..).unwrap_or_default();
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Ok(Some((&rest[..i], from + i + 2))),
        None if rest.len() > 32 => Err("length line too long"),
        None => Ok(None),
    }
}

fn number(digits: &[u8]) -> Result<i64, &'static str> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or("invalid length")
}

/// Runs one command, appending its reply to `out`; true when the client asked to quit.
fn execute(args: &[&[u8]], db: &Db, out: &mut Vec<u8>) -> bool {
    let Some((name, args)) = args.split_first() else {
        return false; // an empty inline line
    };
    let name = name.to_ascii_uppercase();
    let arity_ok = |n: usize, exact: bool| {
        if exact {
            args.len() == n
        } else {
            args.len() >= n
        }
    };
    match (&name[..], args) {
        (b"PING", []) => out.extend_from_slice(b"+PONG\r\n"),
        (b"PING" | b"ECHO", [msg]) => bulk(out, Some(msg)),
        (b"GET", [key]) => bulk(out, db.borrow().get(*key).map(Vec::as_slice)),
        (b"SET", [key, value]) => {
            db.borrow_mut().insert(key.to_vec(), value.to_vec());
            out.extend_from_slice(b"+OK\r\n");
        }
        (b"DEL" | b"EXISTS", keys) if arity_ok(1, false) => {
            let mut db = db.borrow_mut();
            let n = if name == b"DEL" {
                keys.iter().filter(|k| db.remove(**k).is_some()).count()
            } else {
                keys.iter().filter(|k| db.contains_key(**k)).count()
            };
            integer(out, n as i64);
        }
        (b"INCR", [key]) => {
            let mut db = db.borrow_mut();
            let current = match db.get(*key) {
                None => Some(0),
                Some(v) => std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok()),
            };
            match current.and_then(|n| n.checked_add(1)) {
                Some(n) => {
                    db.insert(key.to_vec(), n.to_string().into_bytes());
                    integer(out, n);
                }
                None => out.extend_from_slice(b"-ERR value is not an integer or out of range\r\n"),
            }
        }
        (b"DBSIZE", []) => integer(out, db.borrow().len() as i64),
        (b"FLUSHALL" | b"FLUSHDB", _) => {
            db.borrow_mut().clear();
            out.extend_from_slice(b"+OK\r\n");
        }
        (b"CONFIG", [sub, params @ ..]) if sub.eq_ignore_ascii_case(b"GET") => {
            // No persistence: `save` is empty, `appendonly` is "no", the rest empty.
            out.extend_from_slice(format!("*{}\r\n", params.len() * 2).as_bytes());
            for param in params {
                let value: &[u8] = if param.eq_ignore_ascii_case(b"appendonly") {
                    b"no"
                } else {
                    b""
                };
                bulk(out, Some(param));
                bulk(out, Some(value));
            }
        }
        (b"COMMAND", _) => out.extend_from_slice(b"*0\r\n"),
        (b"QUIT", _) => {
            out.extend_from_slice(b"+OK\r\n");
            return true;
        }
        (
            b"PING" | b"ECHO" | b"GET" | b"SET" | b"DEL" | b"EXISTS" | b"INCR" | b"DBSIZE"
            | b"CONFIG",
            _,
        ) => {
            let name = String::from_utf8_lossy(&name).to_lowercase();
            let msg = format!("-ERR wrong number of arguments for '{name}' command\r\n");
            out.extend_from_slice(msg.as_bytes());
        }
        _ => {
            let name = String::from_utf8_lossy(&name);
            let msg = format!("-ERR unknown command '{name}'\r\n");
            out.extend_from_slice(msg.as_bytes());
        }
    }
    false
}

/// A bulk string, or the null bulk string.
fn bulk(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => {
            out.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        None => out.extend_from_slice(b"$-1\r\n"),
    }
}

fn integer(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(format!(":{n}\r\n").as_bytes());
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:6379".to_string());
    coring::runtime::Runtime::new()?.block_on(async {
        let listener = TcpListener::bind(addr.as_str()).await?;
        println!("kv (RESP) on {}", listener.local_addr()?);
        serve(listener).await
    })
}
