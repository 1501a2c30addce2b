// Table: the kubectl-style text table the plugin prints by default —
// upper-case headers, each column as wide as its widest cell, columns
// separated by three spaces, no trailing blanks. Cells may carry a colour,
// written as ANSI escapes only when the table is told to (a terminal
// without NO_COLOR); widths never count the escapes.
//
// Also here: kubectl's age formatting (k8s.io/apimachinery duration
// HumanDuration), which the AGE columns use.
//
// Thread-safety: a Table is a plain value; use one from one thread.
#pragma once

#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace kubefold::plugin {

enum class Color { kNone, kGreen, kRed, kYellow };

struct Cell {
  Cell(std::string text, Color color = Color::kNone) : text(std::move(text)), color(color) {}  // NOLINT: implicit
  Cell(const char* text) : text(text) {}                                                       // NOLINT: implicit
  std::string text;
  Color color = Color::kNone;
};

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

  // Appends a row. REQUIRES: row.size() == the number of headers. An empty
  // cell is printed as "<none>", as kubectl prints a missing value.
  void Add(std::vector<Cell> row);
  bool empty() const { return rows_.empty(); }
  size_t size() const { return rows_.size(); }

  // Writes the header line and the rows. Holds every row until then: widths
  // come from the content. O(cells).
  void Print(std::ostream& out, bool color) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<Cell>> rows_;
};

// `text` wrapped in the colour's ANSI escapes (unchanged for kNone).
std::string Colorize(std::string_view text, Color color);

// kubectl's HumanDuration: "45s", "3m12s", "17m", "5h3m", "3d4h", "2y10d".
std::string HumanDuration(std::chrono::system_clock::duration d);

// The AGE of an RFC 3339 time relative to `now`; "<unknown>" when `rfc3339`
// is empty or not a time (as kubectl prints a missing timestamp).
std::string Age(std::string_view rfc3339, std::chrono::system_clock::time_point now);

}  // namespace kubefold::plugin
