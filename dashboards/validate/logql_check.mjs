// Parses LogQL with Loki's own lezer grammar (@grafana/lezer-logql, pinned in package.json).
//
// argv[2]: the directory of the installed @grafana/lezer-logql package (its own imports, such as
//          @lezer/lr, resolve from there), so this script can ship inside the Python package.
// stdin:  a JSON array of query strings (Grafana variables already replaced).
// stdout: a JSON array, one object per query:
//   { ok, error: {message, position} | null, streamLabels: [...], streamMatchers: [{name, op, value}],
//     labelFilters: [{name, afterParser}], grouping: [...], lineFormatFields: [...], templates: [...],
//     jsonStages: [[field, ...] | null (a bare | json)], metric: bool, unwrap: [...], parsers: [...] }
// One process checks the whole batch, so the build pays node's start-up once.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const { parser } = await import(pathToFileURL(join(process.argv[2], "index.es.js")).href);

const PARSERS = new Set(["Json", "Logfmt", "Regexp", "Pattern", "Unpack"]);
const TEMPLATE_FIELD = /\{\{(.*?)\}\}/gs;
const FIELD_REF = /(?<![\w\]\)])\.([A-Za-z_][A-Za-z0-9_]*)/g;

function text(query, node) {
  return query.slice(node.from, node.to);
}

function descendants(node, typeName) {
  const found = [];
  const stack = [node];
  while (stack.length) {
    const n = stack.pop();
    for (let c = n.lastChild; c; c = c.prevSibling) {
      if (c.type.name === typeName) found.push(c);
      else stack.push(c);
    }
  }
  return found.sort((a, b) => a.from - b.from);
}

function identifierOf(query, node) {
  const id = node.getChild("Identifier");
  return id ? text(query, id) : null;
}

function unquote(literal) {
  if (literal.startsWith("`")) return literal.slice(1, -1);
  try {
    return JSON.parse(literal);
  } catch {
    return literal.slice(1, -1);
  }
}

function describeError(query, node) {
  const start = Math.max(0, node.from - 20);
  const near = query.slice(start, node.from + 20).replace(/\s+/g, " ");
  const found = node.from >= query.length ? "end of query" : JSON.stringify(query.slice(node.from, node.from + 12));
  return {
    message: `syntax error at position ${node.from}: unexpected ${found} (near ${JSON.stringify(near)})`,
    position: node.from,
  };
}

function analyse(query) {
  const tree = parser.parse(query);
  const out = {
    ok: true,
    error: null,
    streamLabels: [],
    labelFilters: [],
    grouping: [],
    lineFormatFields: [],
    templates: [],
    jsonStages: [],
    streamMatchers: [],
    metric: false,
    unwrap: [],
    parsers: [],
  };
  // first pass: the first error node anywhere (the analysis below skips inside some nodes)
  tree.iterate({
    enter(ref) {
      if (out.ok && ref.type.isError) {
        out.ok = false;
        out.error = describeError(query, ref.node);
      }
      return out.ok ? undefined : false;
    },
  });
  let parserSeen = false;
  tree.iterate({
    enter(ref) {
      const node = ref.node;
      const name = ref.type.name;
      if (name === "MetricExpr") out.metric = true;
      if (name === "Selector") {
        for (const m of descendants(node, "Matcher")) {
          const id = identifierOf(query, m);
          if (id) out.streamLabels.push(id);
          const op = m.firstChild && m.firstChild.nextSibling;
          const str = m.getChild("String");
          if (id && op && str) out.streamMatchers.push({ name: id, op: text(query, op), value: unquote(text(query, str)) });
        }
        return false;
      }
      if (name === "JsonExpressionParser") {
        out.jsonStages.push(descendants(node, "LabelExtractionExpression").map((e) => identifierOf(query, e)));
      } else if (name === "LabelParser" && node.firstChild && node.firstChild.type.name === "Json") {
        out.jsonStages.push(null);
      }
      if (name === "LabelParser" || name === "JsonExpressionParser" || name === "LogfmtParser" ||
          name === "LogfmtExpressionParser") {
        parserSeen = true;
        const child = node.firstChild;
        out.parsers.push(child ? child.type.name : name);
      }
      if (PARSERS.has(name)) parserSeen = true;
      if (name === "LabelFilter") {
        // Matcher / NumberFilter / DurationFilter / BytesFilter / IpLabelFilter carry the label name
        const stack = [node];
        while (stack.length) {
          const n = stack.pop();
          for (let c = n.firstChild; c; c = c.nextSibling) {
            if (c.type.name === "Identifier" && n !== node) {
              out.labelFilters.push({ name: text(query, c), afterParser: parserSeen });
            } else if (c.type.name !== "String") {
              stack.push(c);
            }
          }
        }
        return false;
      }
      if (name === "Grouping") {
        for (const id of descendants(node, "Identifier")) out.grouping.push(text(query, id));
        return false;
      }
      if (name === "LineFormatExpr") {
        const str = node.getChild("String");
        if (str) {
          out.templates.push(unquote(text(query, str)));
          for (const tpl of unquote(text(query, str)).matchAll(TEMPLATE_FIELD)) {
            for (const ref of tpl[1].matchAll(FIELD_REF)) out.lineFormatFields.push(ref[1]);
          }
        }
        return false;
      }
      if (name === "UnwrapExpr") {
        const id = identifierOf(query, node);
        if (id) out.unwrap.push(id);
      }
      return undefined;
    },
  });
  return out;
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  input += chunk;
});
process.stdin.on("end", () => {
  let queries;
  try {
    queries = JSON.parse(input);
  } catch (err) {
    process.stderr.write(`input is not JSON: ${err.message}\n`);
    process.exit(2);
  }
  if (!Array.isArray(queries) || !queries.every((q) => typeof q === "string")) {
    process.stderr.write("input must be a JSON array of strings\n");
    process.exit(2);
  }
  process.stdout.write(JSON.stringify(queries.map(analyse)) + "\n");
});
