//! `medshare emergency …`, `audit --emergency` and `record rekey`: break-glass access.

use std::time::Duration;

use anyhow::{Result, bail};
use medshare::ledger::Emergency;
use medshare::{RecordId, ReviewOutcome};
use serde_json::json;

use crate::EmergencyCommand;
use crate::commands::parse_duration;
use crate::home::Home;
use crate::out::{Out, esc};

fn request_cid(s: &str) -> Result<medshare::Cid> {
    Ok(medshare::parse_cid(s)?)
}

pub fn run(home: &Home, command: EmergencyCommand, out: &Out) -> Result<()> {
    match command {
        EmergencyCommand::Enable { as_, record } => {
            let record: RecordId = record.parse()?;
            let mut vault = home.vault(true)?;
            let patient = home.load_identity(&as_)?;
            let tx = pollster::block_on(vault.enable_emergency(&patient, &record))?;
            let split = vault.state().emergency_split(&record);
            let (k, n) = split.map_or((0, 0), |s| (s.threshold, s.shares.len()));
            out.emit(
                format!(
                    "record {record}: break-glass access enabled, its key split {k} of {n} among the authorities (tx {tx})"
                ),
                json!({"record": record.to_string(), "tx": tx.to_string(), "threshold": k, "shares": n}),
            );
        }
        EmergencyCommand::Request {
            as_,
            record,
            justification,
            window,
        } => {
            let record: RecordId = record.parse()?;
            let window = window
                .as_deref()
                .map(parse_duration)
                .transpose()?
                .map(Duration::from_secs);
            let mut vault = home.vault(true)?;
            let doctor = home.load_identity(&as_)?;
            let request = pollster::block_on(vault.request_emergency(
                &doctor,
                &record,
                &justification,
                window,
            ))?;
            let e = vault.state().emergency(&request).cloned();
            let (k, until) = e.map_or((0, 0), |e| (e.threshold, e.expires));
            out.emit(
                format!(
                    "emergency request {request} recorded: the record opens for you once {k} authorities released their shares (until {until}); `medshare record get --as {} --record {record}`",
                    esc(&as_)
                ),
                json!({"request": request.to_string(), "record": record.to_string(), "threshold": k, "expires": until}),
            );
        }
        EmergencyCommand::Release { request } => {
            let request = request_cid(&request)?;
            let mut vault = home.vault(true)?;
            let authority = home.load_authority()?;
            let tx = pollster::block_on(vault.release_share(&authority, &request))?;
            out.emit(
                format!("share of {} released to request {request} (tx {tx})", authority.id()),
                json!({"request": request.to_string(), "tx": tx.to_string(), "authority": authority.id().to_string()}),
            );
        }
        EmergencyCommand::Review { request, outcome } => {
            let request = request_cid(&request)?;
            let outcome: ReviewOutcome = outcome.parse()?;
            let mut vault = home.vault(true)?;
            let authority = home.load_authority()?;
            let tx = pollster::block_on(vault.review_emergency(&authority, &request, outcome))?;
            out.emit(
                format!("request {request} reviewed: {outcome} (tx {tx})"),
                json!({"request": request.to_string(), "outcome": outcome, "tx": tx.to_string()}),
            );
        }
        EmergencyCommand::Show {
            request,
            as_,
            authority,
        } => {
            let request = request_cid(&request)?;
            let vault = home.vault(false)?;
            let Some(e) = vault.state().emergency(&request).cloned() else {
                bail!("no emergency request {request} on this chain");
            };
            let reader = match (as_, authority) {
                (Some(name), _) => Some(home.load_identity(&name)?),
                (None, true) => Some(home.load_authority()?),
                (None, false) => None,
            };
            let mut value = serde_json::to_value(&e)?;
            let mut text = describe(&e);
            if let Some(reader) = &reader {
                if let Ok(j) = vault.emergency_justification(reader, &request) {
                    text += &format!("\n  justification: {}", esc(&j));
                    value["justification_text"] = json!(j);
                }
                if reader.id() == e.doctor {
                    let status = vault.emergency_status(reader, &request)?;
                    for s in &status.shares {
                        text += &format!(
                            "\n  share {} from {}: {}",
                            s.index,
                            s.authority,
                            if s.valid {
                                "genuine"
                            } else {
                                "FAILS ITS COMMITMENT"
                            }
                        );
                    }
                    text += if status.open {
                        "\n  the record opens for you now"
                    } else {
                        "\n  the record does not open for you yet"
                    };
                    value["shares_checked"] = serde_json::to_value(&status.shares)?;
                    value["open"] = json!(status.open);
                }
            }
            out.emit(text, value);
        }
        EmergencyCommand::List { unreviewed } => list(home, unreviewed, out)?,
    }
    Ok(())
}

fn describe(e: &Emergency) -> String {
    format!(
        "request {}: doctor {} on record {} version {} at block {} (t={}), purpose {}, shares released {} of {} needed until t={}, {}",
        e.request,
        e.doctor,
        e.record,
        e.version,
        e.height,
        e.time,
        e.purpose.code(),
        e.releases.len(),
        e.threshold,
        e.expires,
        match &e.review {
            Some(r) => format!("reviewed {} by {}", r.outcome, r.authority),
            None => "NOT REVIEWED".to_owned(),
        }
    )
}

/// `audit --emergency` (unreviewed) and `emergency list`.
pub fn list(home: &Home, unreviewed: bool, out: &Out) -> Result<()> {
    let vault = home.vault(false)?;
    let all = vault.emergencies(unreviewed);
    let text = if all.is_empty() {
        if unreviewed {
            "no unreviewed emergency access".to_owned()
        } else {
            "no emergency access".to_owned()
        }
    } else {
        all.iter().map(describe).collect::<Vec<_>>().join("\n")
    };
    out.emit(text, serde_json::to_value(&all)?);
    Ok(())
}

/// `record rekey`.
pub fn rekey(home: &Home, as_: &str, record: &str, out: &Out) -> Result<()> {
    let record: RecordId = record.parse()?;
    let mut vault = home.vault(true)?;
    let patient = home.load_identity(as_)?;
    let version = pollster::block_on(vault.rekey(&patient, &record))?;
    out.emit(
        format!("record {record} re-keyed: version {version}"),
        json!({"record": record.to_string(), "version": version}),
    );
    Ok(())
}
