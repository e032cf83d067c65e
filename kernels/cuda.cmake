# The CUDA side of causalsweep, built only when nvcc is found (see CMakeLists.txt).
#   causalsweep_cuda: the kernels (nvcc, C++17) behind the C++17 interface kernels/cuda_kernels.hpp
#   host/cuda_backend.cpp: the Backend that drives them (g++, C++20), compiled into causalsweep_core
add_library(causalsweep_cuda STATIC
  kernels/device_query.cu
  kernels/random_stream.cu
  kernels/connectivity.cu    # A and its largest singular value
  kernels/simulate_gram.cu   # the simulation fused with the Gram accumulation
  kernels/least_squares.cu   # batched OLS and 2SLS (cuSOLVER, cuBLAS)
  kernels/lasso.cu
  kernels/lasso_active_set.cu
  kernels/scores.cu          # correlation estimates and per-run scores
  kernels/n_to_1.cu          # the N-to-1 model family
  kernels/host_threads.cpp   # fibers for the tests' emulation of blocks (g++)
)
target_include_directories(causalsweep_cuda PUBLIC include kernels)
# cuBLAS and cuSOLVER for the batched least squares (shared: their static archives are hundreds of MB).
target_link_libraries(causalsweep_cuda PUBLIC CUDA::cudart_static CUDA::cublas CUDA::cusolver)
# No fast math (nvcc's default; the transforms must match the CPU's); the architectures in messages.
target_compile_definitions(causalsweep_cuda PRIVATE CS_CUDA_ARCHITECTURES="${CMAKE_CUDA_ARCHITECTURES}")
target_compile_options(causalsweep_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
# Boost.Context runs the host emulation's threads on fibers (kernels/host_threads.hpp), which ctest
# uses to find barriers in divergent code and races across phases; without it that test is skipped.
# Its static library, so that the causalsweep binary does not need the package where it runs.
set(CAUSALSWEEP_BOOST_STATIC_SAVED ${Boost_USE_STATIC_LIBS})
set(Boost_USE_STATIC_LIBS ON)
find_package(Boost 1.74 QUIET COMPONENTS context)
set(Boost_USE_STATIC_LIBS ${CAUSALSWEEP_BOOST_STATIC_SAVED})
if(Boost_CONTEXT_FOUND)
  target_compile_definitions(causalsweep_cuda PRIVATE CAUSALSWEEP_HAVE_FIBERS=1)
  target_link_libraries(causalsweep_cuda PRIVATE Boost::context)
  set(CAUSALSWEEP_HAVE_FIBERS ON)
else()
  message(STATUS "Boost.Context not found (Debian: libboost-context-dev): the fiber emulation test is skipped")
  set(CAUSALSWEEP_HAVE_FIBERS OFF)
endif()

target_sources(causalsweep_core PRIVATE host/cuda_backend.cpp host/cuda_estimation.cpp)
target_compile_definitions(causalsweep_core PUBLIC CAUSALSWEEP_HAVE_CUDA=1)
target_link_libraries(causalsweep_core PUBLIC causalsweep_cuda)
