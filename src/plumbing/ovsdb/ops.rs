//! Transaction operations on the `Open_vSwitch` schema, and parsers for their results.
//!
//! Value encodings follow RFC 7047 section 5.1: a set is `["set", [...]]` (or its only
//! element), a map is `["map", [[key, value], ...]]`, a row reference is `["uuid", "..."]`,
//! and a row inserted in the same transaction is `["named-uuid", "..."]`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::OvsdbError;

pub(crate) const DATABASE: &str = "Open_vSwitch";

/// `error` text of a `wait` operation whose condition did not hold before its timeout.
pub(crate) const WAIT_TIMED_OUT: &str = "timed out";

pub(crate) fn string_map(map: &BTreeMap<String, String>) -> Value {
    let pairs: Vec<Value> = map.iter().map(|(key, value)| json!([key, value])).collect();
    json!(["map", pairs])
}

fn uuid(id: &str) -> Value {
    json!(["uuid", id])
}

fn name_is(name: &str) -> Value {
    json!(["name", "==", name])
}

pub(crate) fn select(table: &str, conditions: Value, columns: &[&str]) -> Value {
    json!({"op": "select", "table": table, "where": conditions, "columns": columns})
}

/// A `wait` that aborts the transaction unless `table` contains exactly one row matching
/// `conditions` whose `name` is `name`. With timeout 0 it fails at once with "timed out".
fn wait_named_row(table: &str, conditions: Value, name: &str) -> Value {
    json!({
        "op": "wait", "timeout": 0, "table": table, "where": conditions,
        "columns": ["name"], "until": "==", "rows": [{"name": name}],
    })
}

/// Bumps `Open_vSwitch.next_cfg` and reads the new value. ovs-vswitchd sets cur_cfg to
/// next_cfg after it finishes applying the configuration (ovs-vswitchd.conf.db(5)), and
/// `ovs-vsctl` waits for that unless given `--no-wait`.
fn bump_next_cfg() -> [Value; 2] {
    [
        json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
               "mutations": [["next_cfg", "+=", 1]]}),
        select("Open_vSwitch", json!([]), &["next_cfg"]),
    ]
}

/// Looks up the uuid of the Port named `port`.
pub(crate) fn find_port(port: &str) -> Vec<Value> {
    vec![select("Port", json!([name_is(port)]), &["_uuid"])]
}

/// The handling of a Port row that already has the name [`add_port`] is about to use.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SameName<'a> {
    /// Expect none: the `wait` at [`NAME_FREE_WAIT`] aborts the transaction if one exists.
    /// This saves a lookup round trip on a first plug, the common case.
    Absent,
    /// Port row `uuid`, found beforehand, is removed from every bridge that lists it.
    Replace(&'a str),
}

/// The index of the `wait` that [`SameName::Absent`] adds.
pub(crate) const NAME_FREE_WAIT: usize = 1;

/// Adds Port and Interface `ifname` to `bridge` in one transaction. With
/// [`SameName::Replace`], the old Port row loses its last reference, and garbage collection
/// deletes it with its Interface rows. This matches
/// `ovs-vsctl --if-exists del-port IFNAME -- add-port BRIDGE IFNAME`: a re-plug yields the
/// same rows as a first plug, whatever the old port carried.
pub(crate) fn add_port(
    bridge: &str,
    ifname: &str,
    external_ids: &BTreeMap<String, String>,
    same_name: SameName<'_>,
) -> Vec<Value> {
    let mut ops = vec![wait_named_row("Bridge", json!([name_is(bridge)]), bridge)];
    match same_name {
        SameName::Absent => ops.push(json!({
            "op": "wait", "timeout": 0, "table": "Port", "where": [name_is(ifname)],
            "columns": ["name"], "until": "==", "rows": [],
        })),
        SameName::Replace(old_port) => ops.push(json!({
            "op": "mutate", "table": "Bridge",
            "where": [["ports", "includes", uuid(old_port)]],
            "mutations": [["ports", "delete", uuid(old_port)]],
        })),
    }
    ops.push(json!({
        "op": "insert", "table": "Interface", "uuid-name": "new_iface",
        "row": {"name": ifname, "type": "", "external_ids": string_map(external_ids)},
    }));
    ops.push(json!({
        "op": "insert", "table": "Port", "uuid-name": "new_port",
        "row": {"name": ifname, "interfaces": ["named-uuid", "new_iface"]},
    }));
    ops.push(json!({
        "op": "mutate", "table": "Bridge", "where": [name_is(bridge)],
        "mutations": [["ports", "insert", ["named-uuid", "new_port"]]],
    }));
    ops.extend(bump_next_cfg());
    ops
}

/// Reads what `del_port` needs: the bridge's uuid and the port's uuid.
pub(crate) fn find_bridge_and_port(bridge: &str, port: &str) -> Vec<Value> {
    vec![
        select("Bridge", json!([name_is(bridge)]), &["_uuid"]),
        select("Port", json!([name_is(port)]), &["_uuid"]),
    ]
}

/// Removes Port `port_uuid` from `bridge`; garbage collection deletes the Port and Interface
/// rows. The leading `wait` aborts the transaction if the port is not on that bridge.
pub(crate) fn del_port(bridge: &str, port_uuid: &str) -> Vec<Value> {
    let on_bridge = json!([name_is(bridge), ["ports", "includes", uuid(port_uuid)]]);
    let mut ops = vec![
        wait_named_row("Bridge", on_bridge, bridge),
        json!({
            "op": "mutate", "table": "Bridge", "where": [name_is(bridge)],
            "mutations": [["ports", "delete", uuid(port_uuid)]],
        }),
    ];
    ops.extend(bump_next_cfg());
    ops
}

/// A `wait` that blocks the transaction until ovs-vswitchd reports `cur_cfg >= next_cfg`.
/// ovsdb-server re-evaluates it after every commit, so no polling is needed.
pub(crate) fn wait_applied(next_cfg: i64, timeout_ms: u64) -> Vec<Value> {
    vec![json!({
        "op": "wait", "timeout": timeout_ms, "table": "Open_vSwitch",
        "where": [["cur_cfg", ">=", next_cfg]], "columns": ["cur_cfg"],
        "until": "!=", "rows": [],
    })]
}

/// A `wait` that blocks the transaction until Interface `name` has
/// `external_ids:ovn-installed="true"`, which ovn-controller sets once the port's flows
/// are installed.
pub(crate) fn wait_ovn_installed(name: &str, timeout_ms: u64) -> Vec<Value> {
    let installed = json!(["map", [["ovn-installed", "true"]]]);
    vec![json!({
        "op": "wait", "timeout": timeout_ms, "table": "Interface",
        "where": [name_is(name), ["external_ids", "includes", installed]],
        "columns": ["name"], "until": "==", "rows": [{"name": name}],
    })]
}

pub(crate) fn bridge_datapath_type(bridge: &str) -> Vec<Value> {
    vec![select(
        "Bridge",
        json!([name_is(bridge)]),
        &["datapath_type"],
    )]
}

pub(crate) fn interface_external_ids(name: &str) -> Vec<Value> {
    vec![select(
        "Interface",
        json!([name_is(name)]),
        &["external_ids"],
    )]
}

/// Reads the bridge's ports and all Port and Interface rows, to join them locally.
pub(crate) fn list_interfaces(bridge: &str) -> Vec<Value> {
    vec![
        select("Bridge", json!([name_is(bridge)]), &["ports"]),
        select("Port", json!([]), &["_uuid", "interfaces"]),
        select(
            "Interface",
            json!([]),
            &["_uuid", "name", "external_ids", "ofport", "error"],
        ),
    ]
}

/// Checks the per-operation results of a `transact` reply. RFC 7047 section 4.1.3: a failed
/// operation has an `error` member, and an extra result after the last operation reports a
/// failed commit.
pub(crate) fn check_results(ops: &[Value], result: Value) -> Result<Vec<Value>, OvsdbError> {
    let Value::Array(results) = result else {
        return Err(OvsdbError::Protocol(format!(
            "transact result is not an array: {result}"
        )));
    };
    for (index, entry) in results.iter().enumerate() {
        if entry.get("error").is_some_and(|error| !error.is_null()) {
            let op = ops
                .get(index)
                .and_then(|op| op["op"].as_str())
                .unwrap_or("commit");
            let (error, details) = super::error_and_details(entry);
            return Err(OvsdbError::Transaction {
                index,
                op: op.to_owned(),
                error,
                details,
            });
        }
    }
    if results.len() < ops.len() {
        return Err(OvsdbError::Protocol(format!(
            "transact returned {} results for {} operations",
            results.len(),
            ops.len()
        )));
    }
    Ok(results)
}

/// Tells whether `error` is the failure of a `wait` operation at `index` that timed out.
pub(crate) fn is_wait_timeout(error: &OvsdbError, index: usize) -> bool {
    matches!(error, OvsdbError::Transaction { index: failed, error, .. }
        if *failed == index && error == WAIT_TIMED_OUT)
}

/// Returns the rows of a `select` result.
pub(crate) fn rows(result: &Value) -> Result<&[Value], OvsdbError> {
    result
        .get("rows")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| OvsdbError::Protocol(format!("select result has no rows: {result}")))
}

/// Returns column `column` of `row`, or a protocol error naming it.
pub(crate) fn column<'a>(row: &'a Value, column: &str) -> Result<&'a Value, OvsdbError> {
    row.get(column)
        .ok_or_else(|| OvsdbError::Protocol(format!("row has no column {column}: {row}")))
}

/// Decodes a `["uuid", "..."]` atom.
pub(crate) fn parse_uuid(value: &Value) -> Result<String, OvsdbError> {
    match value.as_array().map(Vec::as_slice) {
        Some([tag, Value::String(id)]) if tag == "uuid" => Ok(id.clone()),
        _ => Err(OvsdbError::Protocol(format!(
            "expected a uuid, got {value}"
        ))),
    }
}

/// Decodes a set of uuids, which RFC 7047 sends as a bare uuid when it has one element.
pub(crate) fn parse_uuid_set(value: &Value) -> Result<Vec<String>, OvsdbError> {
    match set_elements(value) {
        Some(elements) => elements.iter().map(parse_uuid).collect(),
        None => Ok(vec![parse_uuid(value)?]),
    }
}

/// Decodes a `["map", [[key, value], ...]]` of strings.
pub(crate) fn parse_string_map(value: &Value) -> Result<BTreeMap<String, String>, OvsdbError> {
    let invalid = || OvsdbError::Protocol(format!("expected a map of strings, got {value}"));
    let pairs = match value.as_array().map(Vec::as_slice) {
        Some([tag, Value::Array(pairs)]) if tag == "map" => pairs,
        _ => return Err(invalid()),
    };
    pairs
        .iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([Value::String(key), Value::String(value)]) => Ok((key.clone(), value.clone())),
            _ => Err(invalid()),
        })
        .collect()
}

/// Decodes an optional integer column (`min 0, max 1`): an empty set is `None`.
pub(crate) fn parse_optional_integer(value: &Value) -> Result<Option<i64>, OvsdbError> {
    let Some(atom) = optional_atom(value)? else {
        return Ok(None);
    };
    atom.as_i64()
        .map(Some)
        .ok_or_else(|| OvsdbError::Protocol(format!("expected an integer, got {value}")))
}

/// Decodes an optional string column: an empty set is `None`.
pub(crate) fn parse_optional_string(value: &Value) -> Result<Option<String>, OvsdbError> {
    let Some(atom) = optional_atom(value)? else {
        return Ok(None);
    };
    atom.as_str()
        .map(|text| Some(text.to_owned()))
        .ok_or_else(|| OvsdbError::Protocol(format!("expected a string, got {value}")))
}

/// Returns the only atom of an optional column, which is either a bare atom or a set of zero
/// or one atoms.
fn optional_atom(value: &Value) -> Result<Option<&Value>, OvsdbError> {
    match set_elements(value) {
        None => Ok(Some(value)),
        Some([]) => Ok(None),
        Some([atom]) => Ok(Some(atom)),
        Some(_) => Err(OvsdbError::Protocol(format!(
            "expected at most one value, got {value}"
        ))),
    }
}

/// Returns the elements of a `["set", [...]]`, or `None` when `value` is not one.
fn set_elements(value: &Value) -> Option<&[Value]> {
    match value.as_array().map(Vec::as_slice) {
        Some([tag, Value::Array(elements)]) if tag == "set" => Some(elements.as_slice()),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ids() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("attached-mac".to_owned(), "fa:16:3e:d8:1c:8f".to_owned()),
            (
                "iface-id".to_owned(),
                "4312b826-10e5-4b00-9729-cbcf4a52a225".to_owned(),
            ),
        ])
    }

    #[test]
    fn add_port_transaction_shape() {
        let ops = add_port("br-test", "tap4312b826-10", &ids(), SameName::Absent);
        let expected = json!([
            {"op": "wait", "timeout": 0, "table": "Bridge", "where": [["name", "==", "br-test"]],
             "columns": ["name"], "until": "==", "rows": [{"name": "br-test"}]},
            {"op": "wait", "timeout": 0, "table": "Port", "where": [["name", "==", "tap4312b826-10"]],
             "columns": ["name"], "until": "==", "rows": []},
            {"op": "insert", "table": "Interface", "uuid-name": "new_iface",
             "row": {"name": "tap4312b826-10", "type": "", "external_ids": ["map", [
                 ["attached-mac", "fa:16:3e:d8:1c:8f"],
                 ["iface-id", "4312b826-10e5-4b00-9729-cbcf4a52a225"]]]}},
            {"op": "insert", "table": "Port", "uuid-name": "new_port",
             "row": {"name": "tap4312b826-10", "interfaces": ["named-uuid", "new_iface"]}},
            {"op": "mutate", "table": "Bridge", "where": [["name", "==", "br-test"]],
             "mutations": [["ports", "insert", ["named-uuid", "new_port"]]]},
            {"op": "mutate", "table": "Open_vSwitch", "where": [],
             "mutations": [["next_cfg", "+=", 1]]},
            {"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]},
        ]);
        assert_eq!(Value::Array(ops), expected);
    }

    #[test]
    fn add_port_over_old_port_detaches_it_first() {
        let ops = add_port(
            "br-test",
            "tap1",
            &BTreeMap::new(),
            SameName::Replace("5b1a0000-0000-4000-8000-000000000001"),
        );
        assert_eq!(ops.len(), 7);
        assert_eq!(
            ops[1],
            json!({"op": "mutate", "table": "Bridge",
                   "where": [["ports", "includes", ["uuid", "5b1a0000-0000-4000-8000-000000000001"]]],
                   "mutations": [["ports", "delete", ["uuid", "5b1a0000-0000-4000-8000-000000000001"]]]})
        );
        assert_eq!(ops[2]["op"], "insert");
    }

    #[test]
    fn wait_applied_waits_for_cur_cfg() {
        let ops = wait_applied(42, 5000);
        assert_eq!(
            ops[0],
            json!({"op": "wait", "timeout": 5000, "table": "Open_vSwitch",
                   "where": [["cur_cfg", ">=", 42]], "columns": ["cur_cfg"],
                   "until": "!=", "rows": []})
        );
    }

    #[test]
    fn failed_operation_named_in_error() {
        let ops = add_port("br-missing", "tap1", &BTreeMap::new(), SameName::Absent);
        let result = json!([{"error": "timed out"}, null, null]);
        let error = check_results(&ops, result).unwrap_err();
        assert!(is_wait_timeout(&error, 0));
        assert_eq!(
            error.to_string(),
            "transaction failed at wait (operation 0): timed out"
        );
    }

    #[test]
    fn commit_failure_reported_with_details() {
        let ops = find_port("tap1");
        let result = json!([{"rows": []}, {"error": "constraint violation",
            "details": "Transaction causes multiple rows in \"Port\" table to have identical values"}]);
        let error = check_results(&ops, result).unwrap_err();
        assert_eq!(
            error.to_string(),
            "transaction failed at commit (operation 1): constraint violation (Transaction causes multiple rows in \"Port\" table to have identical values)"
        );
    }

    #[test]
    fn short_result_rejected() {
        let ops = list_interfaces("br-test");
        assert!(matches!(
            check_results(&ops, json!([{"rows": []}])),
            Err(OvsdbError::Protocol(_))
        ));
    }

    #[test]
    fn uuid_sets_decoded() {
        let one = json!(["uuid", "a"]);
        let many = json!(["set", [["uuid", "a"], ["uuid", "b"]]]);
        let none = json!(["set", []]);
        assert_eq!(parse_uuid_set(&one).unwrap(), vec!["a"]);
        assert_eq!(parse_uuid_set(&many).unwrap(), vec!["a", "b"]);
        assert!(parse_uuid_set(&none).unwrap().is_empty());
    }

    #[test]
    fn optional_columns_decoded() {
        assert_eq!(parse_optional_integer(&json!(1)).unwrap(), Some(1));
        assert_eq!(parse_optional_integer(&json!(["set", []])).unwrap(), None);
        assert_eq!(
            parse_optional_integer(&json!(["set", [-1]])).unwrap(),
            Some(-1)
        );
        assert_eq!(parse_optional_string(&json!(["set", []])).unwrap(), None);
        assert_eq!(
            parse_optional_string(&json!(
                "could not open network device tap1 (No such device)"
            ))
            .unwrap()
            .as_deref(),
            Some("could not open network device tap1 (No such device)")
        );
        assert!(parse_optional_integer(&json!("one")).is_err());
    }

    #[test]
    fn string_map_round_trip() {
        assert_eq!(parse_string_map(&string_map(&ids())).unwrap(), ids());
        assert!(parse_string_map(&json!(["map", [["a", 1]]])).is_err());
        assert!(parse_string_map(&json!(["set", []])).is_err());
    }
}
