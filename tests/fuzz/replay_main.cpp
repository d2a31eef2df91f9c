// Regression driver for builds without libFuzzer (gcc, the default CI build):
// replays every file given (or every file in every directory given) through
// LLVMFuzzerTestOneInput. A failed check aborts, so ctest reports it.
//   mbx_fuzz_<target>_replay FILE_OR_DIR...
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {
void collect(const std::string& path, std::vector<std::string>* files) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) { std::fprintf(stderr, "cannot stat %s\n", path.c_str()); std::exit(2); }
  if (!S_ISDIR(st.st_mode)) { files->push_back(path); return; }
  DIR* d = opendir(path.c_str());
  std::vector<std::string> names;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') names.push_back(e->d_name);
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) collect(path + "/" + n, files);
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) collect(argv[i], &files);
  if (files.empty()) { std::fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]); return 2; }
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  }
  std::printf("replayed %zu inputs: all checks passed\n", files.size());
  return 0;
}
