// The docs as a course: every page in docs/ is on the learning path (docs/README.md), opens with what
// the reader needs first and what they will be able to do after, and every relative link resolves —
// files, line anchors (../pelt/lora.cpp#L18-L25) and section anchors (methods.md#the-gate).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

std::vector<std::string> read_lines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// GitHub's heading anchor: lower case, spaces to '-', punctuation (and anything non-ASCII) dropped.
std::string slug(const std::string& heading) {
  std::string out;
  for (unsigned char c : heading) {
    if (std::isalnum(c) && c < 128) out += static_cast<char>(std::tolower(c));
    else if (c == ' ' || c == '-') out += '-';
    else if (c == '_') out += '_';
  }
  return out;
}

struct Page {
  std::vector<std::string> lines;
  std::set<std::string> anchors;
  std::vector<std::string> links;  // relative link targets outside code
};

Page read_page(const fs::path& path) {
  Page page{read_lines(path), {}, {}};
  const std::regex link(R"(\]\(([^)\s]+)\))");
  bool fenced = false;
  for (const std::string& raw : page.lines) {
    if (raw.rfind("```", 0) == 0) fenced = !fenced;
    if (fenced) continue;
    if (raw.rfind("#", 0) == 0) page.anchors.insert(slug(raw.substr(raw.find(' ') + 1)));
    const std::string line = std::regex_replace(raw, std::regex("`[^`]*`"), "");  // no links in code spans
    for (auto it = std::sregex_iterator(line.begin(), line.end(), link); it != std::sregex_iterator(); ++it) {
      const std::string target = (*it)[1];
      if (target.rfind("http", 0) != 0 && target.rfind("mailto:", 0) != 0) page.links.push_back(target);
    }
  }
  return page;
}

}  // namespace

TEST_CASE("docs: every page is on the learning path, opens with what it needs and gives, and its links resolve",
          "[docs]") {
  const fs::path docs = unipelt::testing::source_dir() / "docs";
  std::vector<fs::path> pages;
  for (const auto& entry : fs::directory_iterator(docs))
    if (entry.path().extension() == ".md") pages.push_back(entry.path());
  REQUIRE(pages.size() >= 15);

  const Page path = read_page(docs / "README.md");
  const std::set<std::string> on_path(path.links.begin(), path.links.end());
  CHECK(on_path.count("layers.svg"));  // the architecture diagram
  for (const fs::path& page : pages) {
    const std::string name = page.filename().string();
    INFO(name);
    if (name != "README.md") CHECK(on_path.count(name));
    const Page p = read_page(page);
    // "# Title", blank, then a quoted block with both halves.
    REQUIRE(p.lines.size() > 4);
    CHECK(p.lines[0].rfind("# ", 0) == 0);
    CHECK(p.lines[2].rfind("> **You need:**", 0) == 0);
    std::string block;
    for (size_t i = 2; i < p.lines.size() && p.lines[i].rfind(">", 0) == 0; ++i) block += p.lines[i] + " ";
    CHECK(block.find("**You will be able to:**") != std::string::npos);

    for (const std::string& link : p.links) {
      INFO("link " << link);
      const std::string file = link.substr(0, link.find('#'));
      const std::string anchor = link.find('#') == std::string::npos ? "" : link.substr(link.find('#') + 1);
      const fs::path target = file.empty() ? page : docs / file;
      REQUIRE(fs::exists(target));
      if (anchor.empty()) continue;
      std::smatch lines;
      if (std::regex_match(anchor, lines, std::regex(R"(L(\d+)(-L(\d+))?)"))) {  // line anchors into code
        const size_t last = std::stoul(lines[3].matched ? lines[3].str() : lines[1].str());
        CHECK(last <= read_lines(target).size());
      } else {
        CHECK(read_page(target).anchors.count(anchor));
      }
    }
  }
}
