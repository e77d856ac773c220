/// HAProxy's machine-readable forms of statistics, shared by the runtime API (`show stat`,
/// `show info typed|json`) and the stats page (`;csv`, `;typed`, `;json`).
enum StatsFormat {
    /// HAProxy's CSV: the header, a line per row, every line ending with a comma.
    static func csv(_ rows: [StatsRow]) -> String {
        var out = StatsField.csvHeader + "\n"
        let separator = StatsField.firstModuleField.rawValue
        for row in rows {
            for (i, value) in row.values.enumerated() {
                if i == separator { out += "-," }
                if let value { out += csvField(value.text) }
                out += ","
            }
            out += "\n"
        }
        return out
    }

    /// A CSV field: quoted when it holds a comma, a quote or a line break (HAProxy's csv_enc).
    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingAll("\"", with: "\"\"") + "\""
    }

    /// `typed`: `F.IID.SID.POS.NAME.1:TAGS:TYPE:VALUE`, the fields that have a value.
    static func typed(_ rows: [StatsRow]) -> String {
        var out = ""
        for row in rows {
            for field in StatsField.allCases {
                guard let value = row[field] else { continue }
                let d = StatsField.descriptions[field.rawValue]
                out += "\(row.type.letter).\(row.proxyID).\(row.serverID).\(field.rawValue).\(d.name).1:\(field.tags(for: row.type)):\(d.type):\(value.text)\n"
            }
        }
        return out
    }

    /// `json`: HAProxy's array, one array of fields per row.
    static func json(_ rows: [StatsRow]) -> String {
        var objects: [String] = []
        for row in rows {
            var fields: [String] = []
            for field in StatsField.allCases {
                guard let value = row[field] else { continue }
                let d = StatsField.descriptions[field.rawValue]
                let json: String
                switch value {
                case .string(let s): json = s.jsonQuoted
                default: json = value.text
                }
                fields.append("{\"objType\":\"\(row.type.jsonName)\",\"proxyId\":\(row.proxyID),\"id\":\(row.serverID),\"field\":{\"pos\":\(field.rawValue),\"name\":\"\(d.name)\"},\"processNum\":1,\"tags\":\(tagsJSON(field.tags(for: row.type))),\"value\":{\"type\":\"\(d.type)\",\"value\":\(json)}}")
            }
            objects.append("[" + fields.joined(separator: ",") + "]")
        }
        return "[" + objects.joined(separator: ",") + "]"
    }

    /// A field's three tag letters (origin, nature, scope: `MCP`) as HAProxy's JSON object.
    static func tagsJSON(_ tags: String) -> String {
        let t = Array(tags)
        let origin: String = switch t[0] {
        case "K": "Key"
        case "C": "Config"
        case "P": "Product"
        case "M": "Metric"
        default: "Status"
        }
        let nature: String = switch t[1] {
        case "A": "Age"
        case "a": "Avg"
        case "C": "Counter"
        case "D": "Duration"
        case "G": "Gauge"
        case "L": "Limit"
        case "M": "Max"
        case "N": "Name"
        case "O": "Output"
        case "R": "Rate"
        default: "Time"
        }
        let scope: String = switch t[2] {
        case "P": "Process"
        case "S": "Service"
        case "s": "System"
        default: "Cluster"
        }
        return "{\"origin\":\"\(origin)\",\"nature\":\"\(nature)\",\"scope\":\"\(scope)\"}"
    }
}

extension String {
    /// Every occurrence of `target` replaced (Foundation's replacingOccurrences, without Foundation).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = self[...]
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        out += rest
        return out
    }
}
