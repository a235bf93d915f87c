// A file that appears whole under its name, or not at all: written under a temporary
// name next to it and renamed on commit(). For operators that write files (sinks,
// saved models).
#pragma once

#include <loom/sdk.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

namespace loom::sdk {

/// A file written under a temporary name and renamed to its final name by commit();
/// destroyed uncommitted, it leaves nothing behind. Parent directories are created.
class atomic_file {
public:
  atomic_file(const std::string& path, const std::string& tag) : path_(path) {
    auto parent = std::filesystem::path(path_).parent_path();
    std::error_code ec;
    if (!parent.empty())
      std::filesystem::create_directories(parent, ec);
    tmp_ = path_ + ".tmp-" + tag;
    file_ = std::fopen(tmp_.c_str(), "wb");
    if (file_ == nullptr)
      throw error("cannot write " + tmp_ + ": " + std::strerror(errno), LOOM_ERR_IO);
  }
  ~atomic_file() {
    if (file_ != nullptr) {
      std::fclose(file_);
      std::remove(tmp_.c_str());
    }
  }
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;

  void write(std::string_view text) {
    if (std::fwrite(text.data(), 1, text.size(), file_) != text.size())
      throw error("cannot write " + tmp_ + ": " + std::strerror(errno), LOOM_ERR_IO);
  }

  void commit() {
    if (file_ == nullptr)
      return;
    bool ok = std::fflush(file_) == 0;
    ok = std::fclose(file_) == 0 && ok;
    file_ = nullptr;
    if (!ok) {
      std::remove(tmp_.c_str());
      throw error("cannot write " + path_ + ": " + std::strerror(errno), LOOM_ERR_IO);
    }
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      std::remove(tmp_.c_str());
      throw error("cannot rename " + tmp_ + " to " + path_ + ": " + std::strerror(errno), LOOM_ERR_IO);
    }
  }

private:
  std::string path_, tmp_;
  std::FILE* file_ = nullptr;
};

} // namespace loom::sdk
