//! A small ABCI 2.0 socket server (CometBFT v0.38, `tendermint.abci` protobuf types from
//! `tendermint-proto`), on blocking threads.
//!
//! CometBFT opens four connections to the application (consensus, mempool, info, snapshot).
//! On each, it writes `Request` messages, each prefixed with its length as an unsigned varint,
//! and expects one `Response` per request, in order; `Flush` asks for everything answered so far
//! to be written out. One thread serves each connection; the application is shared behind a
//! mutex, so its methods see one request at a time, whichever connection it came on.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use prost::Message;
use tendermint_proto::v0_38::abci::{
    Request, RequestCheckTx, RequestExtendVote, RequestFinalizeBlock, RequestInfo,
    RequestInitChain, RequestPrepareProposal, RequestProcessProposal, RequestQuery,
    RequestVerifyVoteExtension, Response, ResponseCheckTx, ResponseCommit, ResponseEcho,
    ResponseException, ResponseExtendVote, ResponseFinalizeBlock, ResponseFlush, ResponseInfo,
    ResponseInitChain, ResponseListSnapshots, ResponseOfferSnapshot, ResponsePrepareProposal,
    ResponseProcessProposal, ResponseQuery, ResponseVerifyVoteExtension, request, response,
};

/// The largest request accepted (CometBFT's own limit on a block's transactions is 100 MiB).
pub const MAX_MESSAGE: u64 = 128 << 20;

/// What an ABCI 2.0 application answers. Snapshot requests are answered "none" here.
pub trait Application: Send {
    /// `Info`: the last committed height and app hash (CometBFT replays what is missing).
    fn info(&mut self, req: RequestInfo) -> ResponseInfo;
    /// `InitChain`: the genesis.
    fn init_chain(&mut self, req: RequestInitChain) -> Result<ResponseInitChain, String>;
    /// `Query`.
    fn query(&mut self, req: RequestQuery) -> ResponseQuery;
    /// `CheckTx`: whether a transaction may enter the mempool.
    fn check_tx(&mut self, req: RequestCheckTx) -> ResponseCheckTx;
    /// `PrepareProposal`: the proposer's block.
    fn prepare_proposal(&mut self, req: RequestPrepareProposal) -> ResponsePrepareProposal;
    /// `ProcessProposal`: accept or reject a proposed block.
    fn process_proposal(&mut self, req: RequestProcessProposal) -> ResponseProcessProposal;
    /// `ExtendVote`: this validator's vote extension for the block it precommits.
    fn extend_vote(&mut self, req: RequestExtendVote) -> ResponseExtendVote;
    /// `VerifyVoteExtension`: check another validator's extension.
    fn verify_vote_extension(
        &mut self,
        req: RequestVerifyVoteExtension,
    ) -> ResponseVerifyVoteExtension;
    /// `FinalizeBlock`: execute a decided block.
    fn finalize_block(
        &mut self,
        req: RequestFinalizeBlock,
    ) -> Result<ResponseFinalizeBlock, String>;
    /// `Commit`: persist what `FinalizeBlock` computed.
    fn commit(&mut self) -> Result<ResponseCommit, String>;
}

/// Reads one varint-length-prefixed message; `None` at a clean end of stream.
fn read_message(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let mut b = [0u8; 1];
        match r.read(&mut b)? {
            0 if shift == 0 => return Ok(None),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ => {}
        }
        len |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "varint too long",
            ));
        }
    }
    if len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("ABCI message of {len} bytes"),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

fn write_message(w: &mut impl Write, msg: &Response) -> io::Result<()> {
    let body = msg.encode_to_vec();
    let mut len = body.len() as u64;
    let mut prefix = Vec::with_capacity(10);
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            prefix.push(b);
            break;
        }
        prefix.push(b | 0x80);
    }
    w.write_all(&prefix)?;
    w.write_all(&body)
}

fn lock<A: Application + ?Sized>(app: &Mutex<A>) -> std::sync::MutexGuard<'_, A> {
    // A panic inside the application poisons the lock; the state behind it is whatever the
    // last completed request left, which is what CometBFT will replay against anyway.
    app.lock().unwrap_or_else(|p| p.into_inner())
}

/// Answers one request.
pub fn dispatch<A: Application + ?Sized>(app: &Mutex<A>, req: Request) -> Response {
    use request::Value as Q;
    use response::Value as R;
    let value = match req.value {
        None => R::Exception(ResponseException {
            error: "empty request".into(),
        }),
        Some(Q::Echo(e)) => R::Echo(ResponseEcho { message: e.message }),
        Some(Q::Flush(_)) => R::Flush(ResponseFlush {}),
        Some(Q::Info(r)) => R::Info(lock(app).info(r)),
        Some(Q::InitChain(r)) => match lock(app).init_chain(r) {
            Ok(v) => R::InitChain(v),
            Err(error) => R::Exception(ResponseException { error }),
        },
        Some(Q::Query(r)) => R::Query(lock(app).query(r)),
        Some(Q::CheckTx(r)) => R::CheckTx(lock(app).check_tx(r)),
        Some(Q::Commit(_)) => match lock(app).commit() {
            Ok(v) => R::Commit(v),
            Err(error) => R::Exception(ResponseException { error }),
        },
        Some(Q::ListSnapshots(_)) => R::ListSnapshots(ResponseListSnapshots::default()),
        Some(Q::OfferSnapshot(_)) => R::OfferSnapshot(ResponseOfferSnapshot {
            // Abort: this application does not do state sync.
            result: 2,
        }),
        Some(Q::LoadSnapshotChunk(_)) => R::LoadSnapshotChunk(Default::default()),
        Some(Q::ApplySnapshotChunk(_)) => R::ApplySnapshotChunk(Default::default()),
        Some(Q::PrepareProposal(r)) => R::PrepareProposal(lock(app).prepare_proposal(r)),
        Some(Q::ProcessProposal(r)) => R::ProcessProposal(lock(app).process_proposal(r)),
        Some(Q::ExtendVote(r)) => R::ExtendVote(lock(app).extend_vote(r)),
        Some(Q::VerifyVoteExtension(r)) => {
            R::VerifyVoteExtension(lock(app).verify_vote_extension(r))
        }
        Some(Q::FinalizeBlock(r)) => match lock(app).finalize_block(r) {
            Ok(v) => R::FinalizeBlock(v),
            Err(error) => R::Exception(ResponseException { error }),
        },
    };
    Response { value: Some(value) }
}

/// Requests slower than this are logged (the operator sees where consensus time goes):
/// 200 ms, or `MEDSHARE_ABCI_SLOW_MS` (0 logs every request but `Flush` and `Echo`).
fn slow() -> std::time::Duration {
    static SLOW: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();
    *SLOW.get_or_init(|| {
        let ms = std::env::var("MEDSHARE_ABCI_SLOW_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        std::time::Duration::from_millis(ms)
    })
}

fn request_name(req: &Request) -> &'static str {
    use request::Value as Q;
    match &req.value {
        None => "empty",
        Some(Q::Echo(_)) => "Echo",
        Some(Q::Flush(_)) => "Flush",
        Some(Q::Info(_)) => "Info",
        Some(Q::InitChain(_)) => "InitChain",
        Some(Q::Query(_)) => "Query",
        Some(Q::CheckTx(_)) => "CheckTx",
        Some(Q::Commit(_)) => "Commit",
        Some(Q::ListSnapshots(_)) => "ListSnapshots",
        Some(Q::OfferSnapshot(_)) => "OfferSnapshot",
        Some(Q::LoadSnapshotChunk(_)) => "LoadSnapshotChunk",
        Some(Q::ApplySnapshotChunk(_)) => "ApplySnapshotChunk",
        Some(Q::PrepareProposal(_)) => "PrepareProposal",
        Some(Q::ProcessProposal(_)) => "ProcessProposal",
        Some(Q::ExtendVote(_)) => "ExtendVote",
        Some(Q::VerifyVoteExtension(_)) => "VerifyVoteExtension",
        Some(Q::FinalizeBlock(_)) => "FinalizeBlock",
    }
}

fn serve_connection<A: Application + ?Sized>(app: &Mutex<A>, stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(1 << 16, stream.try_clone()?);
    let mut writer = BufWriter::with_capacity(1 << 16, stream);
    while let Some(raw) = read_message(&mut reader)? {
        let req = Request::decode(raw.as_slice())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let flush = matches!(req.value, Some(request::Value::Flush(_)));
        let name = request_name(&req);
        let started = std::time::Instant::now();
        let resp = dispatch(app, req);
        // Includes waiting for the application's lock (what CometBFT waits for).
        let took = started.elapsed();
        let fatal = matches!(resp.value, Some(response::Value::Exception(_)));
        write_message(&mut writer, &resp)?;
        if flush || fatal {
            writer.flush()?;
        }
        if took >= slow() && !matches!(name, "Flush" | "Echo") {
            eprintln!(
                "medshare node: {name} took {:.1} ms",
                took.as_secs_f64() * 1000.0
            );
        }
        if let Some(response::Value::Exception(e)) = &resp.value {
            // CometBFT stops on an exception; say why where the operator looks.
            eprintln!("medshare node: ABCI exception: {}", e.error);
        }
    }
    writer.flush()
}

/// The ABCI server: accepts CometBFT's connections until the process ends.
pub struct Server {
    listener: TcpListener,
}

impl Server {
    /// Binds `addr` (e.g. `127.0.0.1:26658`).
    pub fn bind(addr: &str) -> io::Result<Server> {
        Ok(Server {
            listener: TcpListener::bind(addr)?,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves connections, one thread each, forever.
    pub fn serve<A: Application + 'static>(self, app: Arc<Mutex<A>>) -> io::Result<()> {
        for stream in self.listener.incoming() {
            let stream = stream?;
            let app = app.clone();
            std::thread::Builder::new()
                .name("abci-conn".into())
                .spawn(move || {
                    if let Err(e) = serve_connection(&*app, stream)
                        && e.kind() != io::ErrorKind::UnexpectedEof
                        && e.kind() != io::ErrorKind::ConnectionReset
                    {
                        eprintln!("medshare node: ABCI connection closed: {e}");
                    }
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_framing_round_trips() {
        for n in [0usize, 1, 127, 128, 300, 70_000] {
            let resp = Response {
                value: Some(response::Value::Echo(ResponseEcho {
                    message: "x".repeat(n),
                })),
            };
            let mut buf = Vec::new();
            write_message(&mut buf, &resp).unwrap();
            let back = read_message(&mut buf.as_slice()).unwrap().unwrap();
            assert_eq!(Response::decode(back.as_slice()).unwrap(), resp);
        }
        assert!(read_message(&mut [].as_slice()).unwrap().is_none());
        assert!(read_message(&mut [0x80u8].as_slice()).is_err());
        // A length over the limit is refused before allocating.
        let mut huge = Vec::new();
        let mut len = MAX_MESSAGE + 1;
        while len >= 0x80 {
            huge.push((len as u8) | 0x80);
            len >>= 7;
        }
        huge.push(len as u8);
        assert!(read_message(&mut huge.as_slice()).is_err());
    }
}
