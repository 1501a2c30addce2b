#include "operator/plugin/table.h"

#include <algorithm>
#include <cassert>

#include "controllers/kube/internal/rfc3339.h"

namespace kubefold::plugin {

namespace {

constexpr char kNoneText[] = "<none>";
constexpr size_t kGap = 3;

// Display width: UTF-8 code points (names and messages are mostly ASCII;
// wide East Asian characters are not measured as two).
size_t Width(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

void Table::Add(std::vector<Cell> row) {
  assert(row.size() == headers_.size());
  row.resize(headers_.size(), Cell(""));
  for (auto& c : row) {
    if (c.text.empty()) c.text = kNoneText;
  }
  rows_.push_back(std::move(row));
}

void Table::Print(std::ostream& out, bool color) const {
  std::vector<size_t> widths(headers_.size());
  for (size_t i = 0; i < headers_.size(); ++i) widths[i] = Width(headers_[i]);
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], Width(row[i].text));
  }
  auto line = [&](auto&& text_of, auto&& color_of) {
    std::string s;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string& t = text_of(i);
      s += color ? Colorize(t, color_of(i)) : t;
      if (i + 1 < widths.size()) s.append(widths[i] - Width(t) + kGap, ' ');
    }
    out << s << '\n';
  };
  line([&](size_t i) -> const std::string& { return headers_[i]; }, [](size_t) { return Color::kNone; });
  for (const auto& row : rows_) {
    line([&](size_t i) -> const std::string& { return row[i].text; }, [&](size_t i) { return row[i].color; });
  }
}

std::string Colorize(std::string_view text, Color color) {
  const char* code = nullptr;
  switch (color) {
    case Color::kNone: return std::string(text);
    case Color::kGreen: code = "\033[32m"; break;
    case Color::kRed: code = "\033[31m"; break;
    case Color::kYellow: code = "\033[33m"; break;
  }
  return code + std::string(text) + "\033[0m";
}

std::string HumanDuration(std::chrono::system_clock::duration d) {
  using namespace std::chrono;
  const int64_t seconds = duration_cast<std::chrono::seconds>(d).count();
  auto str = [](int64_t v, const char* unit) { return std::to_string(v) + unit; };
  // A clock a second or so ahead of the server's is "now".
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return str(seconds, "s");
  const int64_t minutes = seconds / 60;
  if (minutes < 10) {
    const int64_t s = seconds % 60;
    return s == 0 ? str(minutes, "m") : str(minutes, "m") + str(s, "s");
  }
  if (minutes < 60 * 3) return str(minutes, "m");
  const int64_t hours = minutes / 60;
  if (hours < 8) {
    const int64_t m = minutes % 60;
    return m == 0 ? str(hours, "h") : str(hours, "h") + str(m, "m");
  }
  if (hours < 48) return str(hours, "h");
  if (hours < 24 * 8) {
    const int64_t h = hours % 24;
    return h == 0 ? str(hours / 24, "d") : str(hours / 24, "d") + str(h, "h");
  }
  if (hours < 24 * 365 * 2) return str(hours / 24, "d");
  if (hours < 24 * 365 * 8) {
    const int64_t dy = (hours / 24) % 365;
    return dy == 0 ? str(hours / 24 / 365, "y") : str(hours / 24 / 365, "y") + str(dy, "d");
  }
  return str(hours / 24 / 365, "y");
}

std::string Age(std::string_view rfc3339, std::chrono::system_clock::time_point now) {
  if (rfc3339.empty()) return "<unknown>";
  const auto t = kube::internal::ParseRfc3339(rfc3339);
  if (!t) return "<unknown>";
  return HumanDuration(now - *t);
}

}  // namespace kubefold::plugin
