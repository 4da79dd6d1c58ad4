//! Compiles flagd's protocol buffers (copied from flagd-schemas, Apache-2.0,
//! into `proto/`) with protox, a Rust protobuf compiler, so no `protoc` is
//! needed; tonic-prost-build writes the messages, clients and servers.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/flagd/sync/v1/sync.proto",
        "proto/flagd/evaluation/v1/evaluation.proto",
        "proto/flagd/evaluation/v2/evaluation.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
