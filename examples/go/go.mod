module chachaml.example/go

go 1.21
