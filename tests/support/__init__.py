"""What tests share: the CLI as a user runs it (`cli`), result records and run files (`records`),
real-format data fixtures (`data`), the fidelity tests' models (`fidelity`), the bad-input corpora's
loader (`corpus`), a real S3 server (`object_storage`) and a multi-node Ray cluster (`ray_nodes`)."""
