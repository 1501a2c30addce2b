#include "operator/plugin/format.h"

#include <array>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

namespace kubefold::plugin {

namespace {

using Json = nlohmann::ordered_json;

// The events of one JSON document, with one event of look-ahead after an
// opening bracket so that an empty object or array can be written inline.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Open(bool object, bool empty) = 0;  // empty: Close follows at once and is not called
  virtual void Close(bool object) = 0;
  virtual void Key(const std::string& k) = 0;
  virtual void Scalar(const std::string& text, bool is_string) = 0;  // text: JSON text for non-strings
  virtual void End() = 0;
};

// nlohmann's SAX interface, feeding a Sink.
class Events {
 public:
  explicit Events(Sink& sink) : sink_(sink) {}

  bool null() { return Value("null", false); }
  bool boolean(bool v) { return Value(v ? "true" : "false", false); }
  bool number_integer(Json::number_integer_t v) { return Value(std::to_string(v), false); }
  bool number_unsigned(Json::number_unsigned_t v) { return Value(std::to_string(v), false); }
  bool number_float(Json::number_float_t, const Json::string_t& text) { return Value(text, false); }
  bool string(Json::string_t& v) { return Value(v, true); }
  bool binary(Json::binary_t&) { return false; }
  bool start_object(std::size_t) { return Start(true); }
  bool end_object() { return Finish(true); }
  bool start_array(std::size_t) { return Start(false); }
  bool end_array() { return Finish(false); }
  bool key(Json::string_t& k) {
    Flush();
    sink_.Key(k);
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    error_ = "byte " + std::to_string(position) + ": " + e.what();
    return false;
  }

  const std::string& error() const { return error_; }

 private:
  // An opening bracket waits for the next event: a matching close makes it
  // an inline empty container.
  void Flush() {
    if (pending_) {
      sink_.Open(*pending_, false);
      pending_.reset();
    }
  }
  bool Value(const std::string& text, bool is_string) {
    Flush();
    sink_.Scalar(text, is_string);
    return Done();
  }
  bool Start(bool object) {
    Flush();
    pending_ = object;
    ++depth_;
    return true;
  }
  bool Finish(bool object) {
    --depth_;
    if (pending_) {
      sink_.Open(object, true);
      pending_.reset();
    } else {
      sink_.Close(object);
    }
    return Done();
  }
  bool Done() {
    if (depth_ == 0) sink_.End();
    return true;
  }

  Sink& sink_;
  std::optional<bool> pending_;  // an opened object (true) or array (false) not written yet
  int depth_ = 0;
  std::string error_;
};

std::string JsonString(const std::string& s) {
  return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
}

class JsonSink final : public Sink {
 public:
  explicit JsonSink(std::ostream& out) : out_(out) {}
  void Open(bool object, bool empty) override {
    BeforeValue();
    if (empty) {
      out_ << (object ? "{}" : "[]");
      return;
    }
    out_ << (object ? '{' : '[');
    first_.push_back(true);
  }
  void Close(bool object) override {
    first_.pop_back();
    Newline();
    out_ << (object ? '}' : ']');
  }
  void Key(const std::string& k) override {
    Separator();
    out_ << JsonString(k) << ": ";
    after_key_ = true;
  }
  void Scalar(const std::string& text, bool is_string) override {
    BeforeValue();
    out_ << (is_string ? JsonString(text) : text);
  }
  void End() override { out_ << '\n'; }

 private:
  void Newline() {
    out_ << '\n';
    for (size_t i = 0; i < first_.size(); ++i) out_ << "    ";
  }
  // Before a key, or a value in an array: the comma and the line break.
  void Separator() {
    if (first_.empty()) return;
    if (!first_.back()) out_ << ',';
    first_.back() = false;
    Newline();
  }
  void BeforeValue() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    Separator();
  }

  std::ostream& out_;
  std::vector<bool> first_;  // per open container: nothing written in it yet
  bool after_key_ = false;
};

class YamlSink final : public Sink {
 public:
  explicit YamlSink(std::ostream& out) : out_(out), emitter_(out) {
    emitter_.SetNullFormat(YAML::LowerNull);
    emitter_.SetBoolFormat(YAML::TrueFalseBool);
  }
  void Open(bool object, bool empty) override {
    if (empty) emitter_ << YAML::Flow;
    emitter_ << (object ? YAML::BeginMap : YAML::BeginSeq);
    if (empty) emitter_ << (object ? YAML::EndMap : YAML::EndSeq);
  }
  void Close(bool object) override { emitter_ << (object ? YAML::EndMap : YAML::EndSeq); }
  void Key(const std::string& k) override {
    emitter_ << YAML::Key;
    String(k);
    emitter_ << YAML::Value;
  }
  void Scalar(const std::string& text, bool is_string) override {
    if (is_string) {
      String(text);
    } else if (text == "null") {
      emitter_ << YAML::Null;
    } else {
      emitter_ << text;  // a JSON number or boolean is a valid plain scalar
    }
  }
  void End() override { out_ << '\n'; }

 private:
  void String(const std::string& s) {
    if (NeedsYamlQuotes(s)) emitter_ << YAML::DoubleQuoted;
    emitter_ << s;
  }

  std::ostream& out_;
  YAML::Emitter emitter_;
};

}  // namespace

bool NeedsYamlQuotes(const std::string& s) {
  if (s.empty()) return true;
  static const std::array<const char*, 28> kWords = {
      "~",    "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
      "yes",  "Yes",  "YES",  "no",   "No",   "NO",   "on",   "On",    "ON",    "off",
      "Off",  "OFF",  "y",    "Y",    "n",    "N",    "=",    "<<"};
  for (const char* w : kWords) {
    if (s == w) return true;
  }
  const char c = s.front();
  return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

Status Reformat(std::istream& in, Format format, std::ostream& out) {
  JsonSink json(out);
  YamlSink* yaml_ptr = nullptr;
  std::optional<YamlSink> yaml;
  if (format == Format::kYaml) {
    yaml.emplace(out);
    yaml_ptr = &*yaml;
  }
  Sink& sink = yaml_ptr ? static_cast<Sink&>(*yaml_ptr) : json;
  Events events(sink);
  bool ok = false;
  try {
    ok = Json::sax_parse(in, &events);
  } catch (const std::exception& e) {  // the emitter, or a stream error
    return InvalidArgument(std::string("cannot format the answer: ") + e.what());
  }
  if (!ok) return InvalidArgument("the answer is not valid JSON (" + events.error() + ")");
  out.flush();
  return Status::Ok();
}

}  // namespace kubefold::plugin
