# GPU benchmark of the CUDA path (included from tests/bench/CMakeLists.txt).
# Runs only on a machine with a CUDA device; it is compiled everywhere.
if(MBX_ENABLE_CUDA)
  add_executable(mbx_cuda_bench ${CMAKE_CURRENT_LIST_DIR}/cuda_bench.cu)
  target_link_libraries(mbx_cuda_bench PRIVATE mbx CUDA::cudart_static)
endif()
