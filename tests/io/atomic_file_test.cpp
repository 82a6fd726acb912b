// io::write_file_atomically: the new content replaces the old in one rename with no leftovers,
// a failure leaves the old file as it was, and devices, FIFOs and symbolic links are written
// through rather than replaced (`xgrad-train --log /dev/null` must not replace /dev/null).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "process_util.hpp"
#include "test_util.hpp"
#include "xgrad/io/atomic_file.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::slurp;
namespace fs = std::filesystem;

namespace {

// A fresh folder unique to this process, removed at the end.
struct Folder {
  fs::path path = xgrad::testing::temp_path("xgrad_atomic");
  Folder() {
    fs::remove_all(path);
    fs::create_directory(path);
  }
  ~Folder() { fs::remove_all(path); }
  std::vector<std::string> names() const {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(path)) v.push_back(e.path().filename());
    std::sort(v.begin(), v.end());
    return v;
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(atomic_file)

BOOST_AUTO_TEST_CASE(replaces_the_content_without_leftovers) {
  Folder d;
  const fs::path f = d.path / "log.csv";
  io::write_file_atomically(f, "first\n");
  BOOST_TEST(slurp(f) == "first\n");
  io::write_file_atomically(f, "second\n");
  BOOST_TEST(slurp(f) == "second\n");
  BOOST_TEST((d.names() == std::vector<std::string>{"log.csv"}));
  BOOST_TEST(static_cast<unsigned>(fs::status(f).permissions() & fs::perms::all) == 0644u);
}

BOOST_AUTO_TEST_CASE(errors_name_the_path_and_leave_nothing) {
  Folder d;
  expect_error([&] { io::write_file_atomically(d.path / "missing" / "a.txt", "x"); },
               {"write_file_atomically", "missing/a.txt"});
  expect_error([&] { io::write_file_atomically(d.path, "x"); },
               {"write_file_atomically", "is a folder"});
  BOOST_TEST(d.names().empty());
  BOOST_TEST(fs::is_directory(d.path));
}

BOOST_AUTO_TEST_CASE(a_device_stays_a_device) {
  // /dev/null exists on every Linux machine; the write goes into it and it stays a device.
  io::write_file_atomically("/dev/null", "discarded\n");
  struct stat st {};
  BOOST_REQUIRE(::stat("/dev/null", &st) == 0);
  BOOST_TEST(S_ISCHR(st.st_mode));
}

BOOST_AUTO_TEST_CASE(a_fifo_gets_the_bytes_and_stays_a_fifo) {
  Folder d;
  const fs::path fifo = d.path / "pipe";
  BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::string got;
  std::thread reader([&] { got = slurp(fifo); });
  io::write_file_atomically(fifo, "through the pipe\n");
  reader.join();
  BOOST_TEST(got == "through the pipe\n");
  BOOST_TEST(fs::is_fifo(fifo));
  BOOST_TEST((d.names() == std::vector<std::string>{"pipe"}));
}

BOOST_AUTO_TEST_CASE(a_symbolic_link_keeps_pointing_at_its_new_content) {
  Folder d;
  fs::create_directory(d.path / "real");
  const fs::path target = d.path / "real" / "curve.csv", link = d.path / "curve.csv";
  io::write_file_atomically(target, "old\n");
  fs::create_symlink(target, link);
  io::write_file_atomically(link, "new\n");
  BOOST_TEST(fs::is_symlink(link));
  BOOST_TEST(slurp(target) == "new\n");
  BOOST_TEST(slurp(link) == "new\n");
  BOOST_TEST((d.names() == std::vector<std::string>{"curve.csv", "real"}));
}

BOOST_AUTO_TEST_SUITE_END()
