module gortpeers

go 1.19
