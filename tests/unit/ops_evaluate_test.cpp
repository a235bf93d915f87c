// The evaluate operator through the real executor: every metric against scikit-learn
// (Debian's python3-sklearn, run by the test on the same CSV file), the Metrics message,
// the rejects, the HTML report artifact, and bad input.
//
// Predictions are CSV files read with ingest.csv; the Model comes from the test.model
// fixture (kind, classes, history as parameters; emit: false sends none) or the optional
// `model` input is left unconnected.
#include "run_env.hpp"

#include "loom/runtime/store.hpp"

#include <loom/fb/metrics_generated.h>

#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <map>
#include <random>
#include <set>

using namespace loom;
using loom::test::contains;
using loom::test::env;
using loom::test::node;
using loom::test::run_recorded;
using loom::test::read_file;
using loom::test::write_file;
using json = nlohmann::json;

namespace {

constexpr double tolerance = 1e-6;

std::string num(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// ---- scikit-learn ------------------------------------------------------------------------

/// Reads the CSV the way evaluate does (empty cell = null; a row with a null target,
/// prediction or score is left out) and prints every metric, the confusion matrix and
/// the curves as JSON.
constexpr const char* sklearn_script = R"PY(
import csv, json, math, sys
import numpy as np
from sklearn import metrics as M

cfg = json.load(open(sys.argv[1]))
with open(cfg["csv"], newline="") as f:
    reader = csv.DictReader(f)
    header = reader.fieldnames
    rows = list(reader)
target, pred = cfg["target"], cfg["prediction"]
probs = [c for c in header if c.startswith("prob_") and c not in (target, pred)]
needed = [target, pred] + (probs if cfg["task"] == "classification" else [])
kept = [r for r in rows if all(r[c] != "" for c in needed)]
out = {"values": {"rows": len(rows), "rows_evaluated": len(kept), "rows_rejected": len(rows) - len(kept)},
       "curves": {}}
v = out["values"]

if cfg["task"] == "regression":
    y = np.array([float(r[target]) for r in kept])
    p = np.array([float(r[pred]) for r in kept])
    v["mse"] = M.mean_squared_error(y, p)
    v["rmse"] = math.sqrt(v["mse"])
    v["mae"] = M.mean_absolute_error(y, p)
    v["r2"] = M.r2_score(y, p)
else:
    y = np.array([r[target] for r in kept])
    p = np.array([r[pred] for r in kept])
    labels = sorted(set(y) | set(p) | {c[len("prob_"):] for c in probs})
    present = sorted(set(y) | set(p))
    v["accuracy"] = M.accuracy_score(y, p)
    for avg in ("macro", "weighted"):
        pr, rc, f1, _ = M.precision_recall_fscore_support(y, p, average=avg, zero_division=0)
        v["precision_" + avg], v["recall_" + avg], v["f1_" + avg] = pr, rc, f1
    pr, rc, f1, sup = M.precision_recall_fscore_support(y, p, labels=labels, average=None, zero_division=0)
    for i, l in enumerate(labels):
        v["precision_" + l], v["recall_" + l], v["f1_" + l], v["support_" + l] = pr[i], rc[i], f1[i], int(sup[i])
    cm = M.confusion_matrix(y, p, labels=labels)
    out["confusion"] = {"labels": labels, "counts": cm.tolist()}
    if len(labels) == 2:
        pos = cfg["positive"]
        v["precision"] = M.precision_score(y, p, pos_label=pos, average="binary", zero_division=0)
        v["recall"] = M.recall_score(y, p, pos_label=pos, average="binary", zero_division=0)
        v["f1"] = M.f1_score(y, p, pos_label=pos, average="binary", zero_division=0)
    if probs:
        S = np.array([[float(r["prob_" + l]) for l in labels] for r in kept])
        Y = np.array([[1 if t == l else 0 for l in labels] for t in y])
        v["log_loss"] = M.log_loss(y, S, labels=labels)
        if len(labels) == 2:
            c = labels.index(cfg["positive"])
            v["roc_auc"] = M.roc_auc_score(Y[:, c], S[:, c])
            v["pr_auc"] = M.average_precision_score(Y[:, c], S[:, c])
            fpr, tpr, _ = M.roc_curve(Y[:, c], S[:, c])
            prec, rec, _ = M.precision_recall_curve(Y[:, c], S[:, c])
            out["curves"]["roc"] = {"x": fpr.tolist(), "y": tpr.tolist()}
            out["curves"]["pr"] = {"x": rec.tolist(), "y": prec.tolist()}
        else:
            v["roc_auc"] = M.roc_auc_score(y, S, multi_class="ovr", average="macro", labels=labels)
            v["pr_auc"] = M.average_precision_score(Y, S, average="macro")
            for c, l in enumerate(labels):
                v["roc_auc_" + l] = M.roc_auc_score(Y[:, c], S[:, c])
                v["pr_auc_" + l] = M.average_precision_score(Y[:, c], S[:, c])
                fpr, tpr, _ = M.roc_curve(Y[:, c], S[:, c])
                prec, rec, _ = M.precision_recall_curve(Y[:, c], S[:, c])
                out["curves"]["roc_" + l] = {"x": fpr.tolist(), "y": tpr.tolist()}
                out["curves"]["pr_" + l] = {"x": rec.tolist(), "y": prec.tolist()}
print(json.dumps(out))
)PY";

json sklearn(const env& e, const std::string& csv, const std::string& task, const std::string& target,
             const std::string& positive = "") {
  write_file(e, "sk.py", sklearn_script);
  json cfg = {{"csv", e.dir + "/" + csv}, {"target", target}, {"prediction", "prediction"},
              {"task", task}, {"positive", positive}};
  write_file(e, "sk.json", cfg.dump());
  std::string cmd = "/usr/bin/python3 " + e.dir + "/sk.py " + e.dir + "/sk.json > " + e.dir + "/sk.out 2> " +
                    e.dir + "/sk.err";
  int rc = std::system(cmd.c_str());
  INFO("scikit-learn: " << read_file(e, "sk.err"));
  REQUIRE(rc == 0);
  return json::parse(read_file(e, "sk.out"));
}

// ---- the Metrics message ---------------------------------------------------------------

struct metrics_msg {
  std::map<std::string, double> values;
  std::vector<std::string> labels;
  std::vector<int64_t> counts;
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> curves;
};

metrics_msg read_metrics(const env& e, const std::string& file) {
  auto bytes = read_file(e, file);
  auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  flatbuffers::Verifier v(data, bytes.size());
  REQUIRE(bytes.size() >= 8);
  REQUIRE(fb::MetricsBufferHasIdentifier(data));
  REQUIRE(fb::VerifyMetricsBuffer(v));
  auto* m = fb::GetMetrics(data);
  metrics_msg out;
  for (auto* x : *m->values())
    out.values[x->name()->str()] = x->value();
  if (m->confusion()) {
    for (auto* l : *m->confusion()->labels())
      out.labels.push_back(l->str());
    out.counts.assign(m->confusion()->counts()->begin(), m->confusion()->counts()->end());
  }
  if (m->curves())
    for (auto* c : *m->curves())
      out.curves[c->name()->str()] = {{c->x()->begin(), c->x()->end()}, {c->y()->begin(), c->y()->end()}};
  return out;
}

/// Every value scikit-learn computed is a node metric and in the Metrics message, equal
/// to 1e-6, and evaluate computed nothing else; the confusion matrix and the curves
/// agree too.
void check_against(const json& sk, const node_record& n, const metrics_msg& msg) {
  std::set<std::string> want, got;
  for (auto& [name, value] : sk["values"].items()) {
    want.insert(name);
    INFO("metric " << name);
    REQUIRE(n.metrics.count(name) == 1);
    CHECK(std::abs(n.metrics.at(name) - value.get<double>()) <= tolerance);
    REQUIRE(msg.values.count(name) == 1);
    CHECK(msg.values.at(name) == n.metrics.at(name));
  }
  for (auto& [name, value] : n.metrics)
    got.insert(name);
  CHECK(got == want);
  CHECK(msg.values.size() == want.size());

  if (sk.contains("confusion")) {
    auto labels = sk["confusion"]["labels"].get<std::vector<std::string>>();
    auto counts = sk["confusion"]["counts"];
    REQUIRE(msg.labels.size() == labels.size());
    std::map<std::string, size_t> at;
    for (size_t i = 0; i < msg.labels.size(); ++i)
      at[msg.labels[i]] = i;
    const size_t k = labels.size();
    for (size_t t = 0; t < k; ++t)
      for (size_t p = 0; p < k; ++p) {
        INFO("confusion " << labels[t] << " -> " << labels[p]);
        REQUIRE(at.count(labels[t]));
        REQUIRE(at.count(labels[p]));
        CHECK(msg.counts[at[labels[t]] * k + at[labels[p]]] == counts[t][p].get<int64_t>());
      }
  }
  std::set<std::string> curve_names;
  for (auto& [name, c] : sk["curves"].items()) {
    curve_names.insert(name);
    INFO("curve " << name);
    REQUIRE(msg.curves.count(name) == 1);
    auto& [x, y] = msg.curves.at(name);
    auto wx = c["x"].get<std::vector<double>>(), wy = c["y"].get<std::vector<double>>();
    REQUIRE(x.size() == wx.size());
    REQUIRE(y.size() == wy.size());
    for (size_t i = 0; i < x.size(); ++i) {
      CHECK(std::abs(x[i] - wx[i]) <= tolerance);
      CHECK(std::abs(y[i] - wy[i]) <= tolerance);
    }
  }
  CHECK(msg.curves.size() == curve_names.size());
}

// ---- data ------------------------------------------------------------------------------------

/// Binary predictions: labels no / yes, scores in steps of 1/20 (many ties), some rows
/// mislabelled, a few rows with a null target, prediction or score.
std::string binary_csv(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::string csv = "id,y,prediction,prob_no,prob_yes\n";
  for (size_t i = 0; i < n; ++i) {
    bool yes = g() % 3 == 0;
    // positives score 7..20, negatives 0..13: an overlap to rank, and many ties
    int k = static_cast<int>(g() % 14) + (yes ? 7 : 0);
    double p_yes = k / 20.0;
    std::string pred = p_yes >= 0.5 ? "yes" : "no";
    std::string truth = yes ? "yes" : "no";
    std::string py = num(p_yes), pn = num(1 - p_yes);
    if (i % 97 == 5)
      truth = "";
    if (i % 89 == 7)
      pred = "";
    if (i % 101 == 11)
      py = "";
    csv += std::to_string(i) + "," + truth + "," + pred + "," + pn + "," + py + "\n";
  }
  return csv;
}

/// Four classes 0..3 as an i64 target; the prediction is text (read as a string); scores
/// are integer weights / their sum (ties within and across rows).
std::string multiclass_csv(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::string csv = "y,prediction,prob_0,prob_1,prob_2,prob_3\n";
  for (size_t i = 0; i < n; ++i) {
    int truth = static_cast<int>(g() % 4);
    int w[4], total = 0;
    for (int c = 0; c < 4; ++c) {
      w[c] = 1 + static_cast<int>(g() % 4) + (c == truth && g() % 3 != 0 ? 4 : 0);
      total += w[c];
    }
    int best = 0;
    for (int c = 1; c < 4; ++c)
      if (w[c] > w[best])
        best = c;
    csv += (i % 53 == 3 ? std::string() : std::to_string(truth)) + "," + std::to_string(best);
    for (int c = 0; c < 4; ++c)
      csv += "," + num(static_cast<double>(w[c]) / total);
    csv += "\n";
  }
  return csv;
}

std::string binary_graph(const std::string& extra_eval, const std::string& model) {
  return R"(
name: eval
nodes:
  - {id: load, op: ingest.csv, with: {path: preds.csv, frame_rows: 64, schema: {y: string, prediction: string}}}
  - {id: m, op: test.model, with: )" + model + R"(}
  - {id: e, op: evaluate, inputs: {predictions: load.out, model: m.model}, with: {target: y)" + extra_eval + R"(}}
  - {id: save, op: test.save, inputs: e.metrics, with: {path: metrics.bin}}
  - {id: rej, op: sink.csv, inputs: e.rejects, with: {path: rejects.csv}}
)";
}

const std::string history =
  "history: [{epoch: 1, name: train_loss, value: 0.9}, {epoch: 2, name: train_loss, value: 0.6}, "
  "{epoch: 3, name: train_loss, value: 0.5}, {epoch: 1, name: val_loss, value: 0.95}, "
  "{epoch: 2, name: val_loss, value: 0.7}, {epoch: 3, name: val_loss, value: 0.65}, "
  "{epoch: 1, name: val_accuracy, value: 0.61}, {epoch: 2, name: val_accuracy, value: 0.7}, "
  "{epoch: 3, name: val_accuracy, value: 0.74}]";

} // namespace

// ---- classification ------------------------------------------------------------------------

TEST_CASE("evaluate: binary classification matches scikit-learn", "[evaluate][sklearn]") {
  env e;
  write_file(e, "preds.csv", binary_csv(600, 11));
  auto run = run_recorded(e, binary_graph("", "{classes: [no, yes], target: y, " + history + "}"));
  REQUIRE(run.result.state == "succeeded");
  auto& n = node(run.result, "e");
  auto sk = sklearn(e, "preds.csv", "classification", "y", "yes");
  check_against(sk, n, read_metrics(e, "metrics.bin"));
  // every row is evaluated or rejected, and the rejected ones are on `rejects`
  CHECK(n.rows_in == 600);
  CHECK(n.metrics.at("rows_evaluated") + n.metrics.at("rows_rejected") == 600);
  CHECK(n.rows_rejected == n.metrics.at("rows_rejected"));
  CHECK(n.rows_rejected > 10);
  auto rejects = e.lines("rejects.csv");
  REQUIRE(rejects.size() == n.rows_rejected + 1);
  CHECK(rejects[0] == "row,reason,target,prediction");
  CHECK(contains(read_file(e, "rejects.csv"), "\n6,null target 'y',,"));    // i = 5
  CHECK(contains(read_file(e, "rejects.csv"), "\n8,null prediction 'prediction',")); // i = 7
  CHECK(contains(read_file(e, "rejects.csv"), "\n12,null score 'prob_yes',"));        // i = 11
  // sanity: a real classifier, not a coin
  CHECK(n.metrics.at("roc_auc") > 0.7);
  CHECK(n.metrics.at("accuracy") > 0.6);
}

TEST_CASE("evaluate: binary with an explicit positive class", "[evaluate][sklearn]") {
  env e;
  write_file(e, "preds.csv", binary_csv(300, 5));
  auto run = run_recorded(e, binary_graph(", positive: \"no\", report: false", "{classes: [no, yes]}"));
  REQUIRE(run.result.state == "succeeded");
  auto sk = sklearn(e, "preds.csv", "classification", "y", "no");
  check_against(sk, node(run.result, "e"), read_metrics(e, "metrics.bin"));
  CHECK_FALSE(run.find_artifact("e.report.html"));
}

TEST_CASE("evaluate: four classes with tied scores, an i64 target against string predictions",
          "[evaluate][sklearn]") {
  env e;
  write_file(e, "preds.csv", multiclass_csv(700, 3));
  // model: the test.model parameters, or "" for no model node (the input unconnected)
  auto graph = [](const std::string& model) {
    std::string g = R"(
name: multi
nodes:
  - {id: load, op: ingest.csv, with: {path: preds.csv, frame_rows: 100, schema: {prediction: string}}}
  - {id: save, op: test.save, inputs: e.metrics, with: {path: metrics.bin}}
)";
    if (model.empty())
      return g + "  - {id: e, op: evaluate, inputs: {predictions: load.out}, with: {target: y}}\n";
    return g + "  - {id: m, op: test.model, with: " + model + "}\n" +
           "  - {id: e, op: evaluate, inputs: {predictions: load.out, model: m.model}, with: {target: y}}\n";
  };
  auto sk = sklearn(e, "preds.csv", "classification", "y");
  CHECK(sk["values"]["rows_rejected"] == 14); // i % 53 == 3

  SECTION("without a model: the classes are the labels seen, in numeric order") {
    auto r = e.run(e.graph(graph("")));
    REQUIRE(r.state == "succeeded");
    auto msg = read_metrics(e, "metrics.bin");
    check_against(sk, node(r, "e"), msg);
    CHECK(msg.labels == std::vector<std::string>{"0", "1", "2", "3"});
    CHECK(node(r, "e").rows_rejected == 14);
  }
  SECTION("a connected model input that delivers no Model is the same as none") {
    auto r = e.run(e.graph(graph("{emit: false}")));
    REQUIRE(r.state == "succeeded");
    auto msg = read_metrics(e, "metrics.bin");
    check_against(sk, node(r, "e"), msg);
    CHECK(msg.labels == std::vector<std::string>{"0", "1", "2", "3"});
  }
  SECTION("with a model: its class order, the same metrics") {
    auto r = e.run(e.graph(graph("{kind: softmax, classes: ['2', '0', '3', '1']}")));
    REQUIRE(r.state == "succeeded");
    auto msg = read_metrics(e, "metrics.bin");
    check_against(sk, node(r, "e"), msg);
    CHECK(msg.labels == std::vector<std::string>{"2", "0", "3", "1"});
  }
}

TEST_CASE("evaluate: labels only, no probability columns", "[evaluate][sklearn]") {
  env e;
  write_file(e, "preds.csv",
             "y,prediction\n"
             "cat,cat\ncat,dog\ndog,dog\nbird,cat\nbird,bird\ndog,dog\ncat,cat\nfish,cat\n");
  auto r = e.run(e.graph(R"(
name: labels
nodes:
  - {id: load, op: ingest.csv, with: {path: preds.csv}}
  - {id: e, op: evaluate, inputs: {predictions: load.out}, with: {target: y}}
  - {id: save, op: test.save, inputs: e.metrics, with: {path: metrics.bin}}
)"));
  REQUIRE(r.state == "succeeded");
  auto sk = sklearn(e, "preds.csv", "classification", "y");
  auto msg = read_metrics(e, "metrics.bin");
  check_against(sk, node(r, "e"), msg);
  // by hand: 5 of 8 right; fish is never predicted, so its precision is 0 / 0 = 0
  CHECK(node(r, "e").metrics.at("accuracy") == Approx(5.0 / 8));
  CHECK(node(r, "e").metrics.at("precision_fish") == 0);
  CHECK(node(r, "e").metrics.count("roc_auc") == 0);
  CHECK(msg.labels == std::vector<std::string>{"bird", "cat", "dog", "fish"});
  CHECK(msg.curves.empty());
}

// ---- regression --------------------------------------------------------------------------------

TEST_CASE("evaluate: regression matches scikit-learn", "[evaluate][sklearn]") {
  env e;
  std::mt19937 g(9);
  std::normal_distribution<double> noise(0, 3);
  std::string csv = "y,prediction,x\n";
  for (int i = 0; i < 500; ++i) {
    int64_t y = static_cast<int64_t>(g() % 200) - 50;
    double p = static_cast<double>(y) * 0.9 + noise(g) + 2;
    csv += std::to_string(y) + "," + (i % 71 == 4 ? std::string() : num(p)) + "," + std::to_string(i) + "\n";
  }
  write_file(e, "preds.csv", csv);
  auto run = run_recorded(e, R"(
name: reg
nodes:
  - {id: load, op: ingest.csv, with: {path: preds.csv, frame_rows: 128}}
  - {id: m, op: test.model, with: {kind: linear, target: y, history: [{epoch: 1, name: train_loss, value: 4}, {epoch: 2, name: train_loss, value: 2}]}}
  - {id: e, op: evaluate, inputs: {predictions: load.out, model: m.model}, with: {target: y}}
  - {id: save, op: test.save, inputs: e.metrics, with: {path: metrics.bin}}
)");
  REQUIRE(run.result.state == "succeeded");
  auto sk = sklearn(e, "preds.csv", "regression", "y");
  auto msg = read_metrics(e, "metrics.bin");
  check_against(sk, node(run.result, "e"), msg);
  CHECK(msg.labels.empty());
  CHECK(node(run.result, "e").rows_rejected == 7); // i % 71 == 4
  CHECK(node(run.result, "e").metrics.at("r2") > 0.9);
  auto html = run.find_artifact("e.report.html");
  REQUIRE(html);
  CHECK(contains(*html, "Predicted against true"));
  CHECK(contains(*html, "<circle"));
  CHECK(contains(*html, ">train_loss<"));
  CHECK(contains(*html, "title=\"" + num(node(run.result, "e").metrics.at("rmse")) + "\""));
}

TEST_CASE("evaluate: task auto follows the prediction column without a model", "[evaluate]") {
  env e;
  write_file(e, "preds.csv", "y,prediction\n1,1.5\n2,2\n3,2.5\n4,4\n");
  auto r = e.run(e.graph(R"(
name: auto
nodes:
  - {id: load, op: ingest.csv, with: {path: preds.csv}}
  - {id: e, op: evaluate, inputs: {predictions: load.out}, with: {target: y}}
)"));
  REQUIRE(r.state == "succeeded");
  auto& m = node(r, "e").metrics;
  CHECK(m.at("mse") == Approx(0.125));  // (0.25 + 0 + 0.25 + 0) / 4
  CHECK(m.at("mae") == Approx(0.25));
  CHECK(m.at("r2") == Approx(1 - 0.5 / 5.0)); // SS_tot = 2.25 + 0.25 + 0.25 + 2.25
  CHECK(m.count("accuracy") == 0);
}

// ---- the report ---------------------------------------------------------------------------------

TEST_CASE("evaluate: the HTML report is self-contained and shows the evaluation", "[evaluate][report]") {
  env e;
  write_file(e, "preds.csv", multiclass_csv(300, 8));
  auto run = run_recorded(e, R"(
name: report
nodes:
  - {id: load, op: ingest.csv, with: {path: preds.csv, schema: {prediction: string}}}
  - {id: m, op: test.model, with: {kind: mlp, target: y, classes: ['0', '1', '2', '3'], )" + history + R"(}}
  - {id: scores, op: evaluate, inputs: {predictions: load.out, model: m.model}, with: {target: y}}
)");
  REQUIRE(run.result.state == "succeeded");
  auto& m = node(run.result, "scores").metrics;
  auto found = run.find_artifact("scores.report.html");
  REQUIRE(found);
  const std::string& html = *found;
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(contains(html, "</html>"));
  // the values, exactly, as the titles of their rounded cells
  for (auto name : {"accuracy", "f1_macro", "precision_weighted", "recall_macro", "roc_auc", "pr_auc", "log_loss"}) {
    INFO(name);
    CHECK(contains(html, "title=\"" + num(m.at(name)) + "\""));
  }
  char shown[32];
  std::snprintf(shown, sizeof shown, "%.4f", m.at("accuracy"));
  CHECK(contains(html, std::string(">") + shown + "</td>"));
  // per class rows, the confusion matrix, the curves and the training history
  CHECK(contains(html, "<h2>Per class</h2>"));
  CHECK(contains(html, "title=\"" + num(m.at("f1_2")) + "\""));
  CHECK(contains(html, "<table class=\"cm\">"));
  CHECK(contains(html, "background:rgba("));
  CHECK(contains(html, "ROC curve"));
  CHECK(contains(html, "Precision-recall curve"));
  CHECK(contains(html, "<h2>Training</h2>"));
  CHECK(contains(html, ">val_accuracy<"));
  CHECK(contains(html, ">train_loss<"));
  size_t svgs = 0;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1))
    ++svgs;
  CHECK(svgs == 4); // ROC, PR, loss, accuracy
  CHECK(contains(html, "<polyline"));
  // the model and the rejects
  CHECK(contains(html, "<td>mlp</td>"));
  CHECK(contains(html, "null target &#39;y&#39;"));
  // nothing to fetch: no scripts, links, images or URLs; "http" only in the SVG namespace
  for (auto bad : {"<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import"}) {
    INFO(bad);
    CHECK_FALSE(contains(html, bad));
  }
  const std::string xmlns = "xmlns=\"http://www.w3.org/2000/svg\"";
  size_t https = 0;
  for (size_t at = html.find("http"); at != std::string::npos; at = html.find("http", at + 1)) {
    ++https;
    CHECK(html.compare(at - 7, xmlns.size(), xmlns) == 0);
  }
  CHECK(https == svgs);
}

TEST_CASE("evaluate: labels in the report are escaped", "[evaluate][report]") {
  env e;
  write_file(e, "preds.csv", "y,prediction\n<b>x</b>,<b>x</b>\n\"a&b\",<b>x</b>\n");
  auto run = run_recorded(e, R"(
name: esc
nodes:
  - {id: load, op: ingest.csv, with: {path: preds.csv}}
  - {id: e, op: evaluate, inputs: {predictions: load.out}, with: {target: y}}
)");
  REQUIRE(run.result.state == "succeeded");
  auto html = run.find_artifact("e.report.html");
  REQUIRE(html);
  CHECK_FALSE(contains(*html, "<b>"));
  CHECK(contains(*html, "&lt;b&gt;x&lt;/b&gt;"));
  CHECK(contains(*html, "a&amp;b"));
}

// ---- bad input ---------------------------------------------------------------------------------

TEST_CASE("evaluate: missing columns fail the node naming them", "[evaluate][errors]") {
  env e;
  write_file(e, "preds.csv", "y,prediction,prob_a\na,a,0.9\nb,a,0.6\n");
  auto run = [&](const std::string& with, const std::string& model = "{emit: false}") {
    return e.run(e.graph(R"(
name: bad
nodes:
  - {id: load, op: ingest.csv, with: {path: preds.csv}}
  - {id: m, op: test.model, with: )" + model + R"(}
  - {id: e, op: evaluate, inputs: {predictions: load.out, model: m.model}, with: )" + with + R"(}
)"));
  };
  {
    auto r = run("{target: label}");
    CHECK(r.state == "failed");
    CHECK(contains(node(r, "e").error, "target: no column 'label' in the predictions (columns: y (string)"));
  }
  {
    auto r = run("{target: y, prediction: pred}");
    CHECK(r.state == "failed");
    CHECK(contains(node(r, "e").error, "prediction: no column 'pred'"));
  }
  {
    auto r = run("{target: y}");
    CHECK(r.state == "failed");
    CHECK(contains(node(r, "e").error, "no probability column 'prob_b' for class 'b' (probability columns: prob_a)"));
  }
  {
    auto r = run("{target: y}", "{classes: [a, c]}"); // b is not a class of the model
    CHECK(r.state == "failed");
    CHECK(contains(node(r, "e").error, "target column 'y': label 'b' in row 2 is not one of the model's classes (a, c)"));
  }
  {
    auto r = run("{target: y, positive: z}", "{classes: [a, b]}");
    CHECK(r.state == "failed");
    CHECK(contains(node(r, "e").error, "positive: 'z' is not one of the classes (a, b)"));
  }
  {
    auto r = run("{target: y, task: regression}");
    CHECK(r.state == "failed");
    CHECK(contains(node(r, "e").error, "target column 'y' is string; regression needs numbers"));
  }
}

TEST_CASE("evaluate: bad parameters and a bad model are refused", "[evaluate][errors]") {
  env e;
  write_file(e, "preds.csv", "y,prediction\na,a\n");
  auto run = [&](const std::string& with, const std::string& model_op = "test.model") {
    return e.run(e.graph(R"(
name: bad
nodes:
  - {id: load, op: ingest.csv, with: {path: preds.csv}}
  - {id: m, op: )" + model_op + R"(}
  - {id: e, op: evaluate, inputs: {predictions: load.out, model: m.model}, with: )" + with + R"(}
)"));
  };
  CHECK(contains(node(run("{target: y, task: ranking}"), "e").error,
                 "task: expected auto, classification or regression, got 'ranking'"));
  CHECK(contains(node(run("{target: y, prediction: y}"), "e").error, "target and prediction are both 'y'"));
  CHECK(contains(node(run("{target: ''}"), "e").error, "target: name the column"));
  auto r = run("{target: y}", "test.model_src"); // a model without classes: regression
  CHECK(contains(node(r, "e").error, "target column 'y' is string; regression needs numbers (the task is "
                                     "regression because the Model has no classes)"));
}

TEST_CASE("evaluate: null rows are rejected with a reason, never a crash", "[evaluate][rejects]") {
  env e;
  SECTION("every row null: the node succeeds and says so") {
    write_file(e, "preds.csv", "y,prediction\n,a\nb,\n,\n");
    auto r = e.run(e.graph(R"(
name: nulls
nodes:
  - {id: load, op: ingest.csv, with: {path: preds.csv, schema: {y: string, prediction: string}}}
  - {id: e, op: evaluate, inputs: {predictions: load.out}, with: {target: y}}
  - {id: rej, op: sink.csv, inputs: e.rejects, with: {path: rejects.csv}}
)"));
    REQUIRE(r.state == "succeeded");
    auto& n = node(r, "e");
    CHECK(n.rows_in == 3);
    CHECK(n.rows_rejected == 3);
    CHECK(n.metrics.at("rows_evaluated") == 0);
    CHECK(n.metrics.count("accuracy") == 0);
    CHECK(read_file(e, "rejects.csv") ==
          "row,reason,target,prediction\n1,null target 'y',,a\n2,null prediction 'prediction',b,\n"
          "3,null target 'y',,\n");
  }
  SECTION("non-finite regression values") {
    write_file(e, "preds.csv", "y,prediction\n1,1\n2,nan\ninf,3\n4,5\n");
    auto r = e.run(e.graph(R"(
name: nan
nodes:
  - {id: load, op: ingest.csv, with: {path: preds.csv, schema: {y: f64, prediction: f64}}}
  - {id: e, op: evaluate, inputs: {predictions: load.out}, with: {target: y}}
  - {id: rej, op: sink.csv, inputs: e.rejects, with: {path: rejects.csv}}
)"));
    REQUIRE(r.state == "succeeded");
    auto& n = node(r, "e");
    CHECK(n.rows_rejected == 2);
    CHECK(n.metrics.at("mae") == Approx(0.5));
    CHECK(contains(read_file(e, "rejects.csv"), "2,prediction 'prediction' is not finite,2,nan\n"));
    CHECK(contains(read_file(e, "rejects.csv"), "3,target 'y' is not finite,inf,3\n"));
  }
  SECTION("no frames at all") {
    write_file(e, "preds.csv", "y,prediction\n");
    auto r = e.run(e.graph(R"(
name: empty
nodes:
  - {id: load, op: ingest.csv, with: {path: preds.csv, schema: {y: string, prediction: string}}}
  - {id: e, op: evaluate, inputs: {predictions: load.out}, with: {target: y}}
)"));
    REQUIRE(r.state == "succeeded");
    CHECK(node(r, "e").metrics.at("rows") == 0);
  }
}

TEST_CASE("evaluate: values at the limits of double still give a report", "[evaluate][report]") {
  env e;
  write_file(e, "preds.csv", "y,prediction\n1e300,-1e300\n-1e300,1e300\n1,1\n1e-300,0\n");
  auto run = run_recorded(e, R"(
name: limits
nodes:
  - {id: load, op: ingest.csv, with: {path: preds.csv}}
  - {id: m, op: test.model, with: {kind: linear, history: [{epoch: 1, name: train_loss, value: 1e308}, {epoch: 1, name: val_loss, value: -1e308}]}}
  - {id: e, op: evaluate, inputs: {predictions: load.out, model: m.model}, with: {target: y}}
)");
  REQUIRE(run.result.state == "succeeded");
  CHECK(node(run.result, "e").metrics.at("mae") == Approx(1e300));
  auto html = run.find_artifact("e.report.html");
  REQUIRE(html);
  CHECK(contains(*html, "Predicted against true"));
  CHECK(contains(*html, "<h2>Training</h2>"));
  CHECK(contains(*html, "</html>"));
}
